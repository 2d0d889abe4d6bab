/// `api!` cannot name a function outside the list (it would not compile), and the list
/// names each function once, sorted, so a reader finds one quickly.
#[test]
fn the_required_list_is_sorted_and_names_each_function_once() {
    assert!(super::api::REQUIRED.windows(2).all(|w| w[0] < w[1]));
}
