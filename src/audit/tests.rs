use super::*;

#[test]
fn long_details_are_cut_at_a_character_boundary_and_say_how_long_they_were() {
    assert_eq!(bounded("short"), "short");
    let long = "\u{e9}".repeat(3000);
    let cut = bounded(&long);
    assert!(cut.len() < MAX_DETAIL + 40, "{}", cut.len());
    assert!(cut.ends_with("... (6000 bytes)"), "{cut}");
}
