use super::*;

#[test]
fn command_table_is_case_insensitive() {
    assert_eq!(shape(b"HsEt"), Some((Shape::FieldValues, -4)));
    assert_eq!(shape(b"move"), Some((Shape::MoveDb, 3)));
    assert!(arity_ok(3, -3) && arity_ok(4, -3) && !arity_ok(2, -3));
    assert!(arity_ok(4, 4) && !arity_ok(5, 4));
    assert_eq!(shape(b"get"), None);
    assert_eq!(shape(b"a-command-name-longer-than-the-buffer"), None);
}
