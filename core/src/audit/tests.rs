use super::*;

fn event(n: u64) -> Event {
    Event {
        event: "phi-read".into(),
        time_ms: n,
        user: "app".into(),
        command: "ENC.GET".into(),
        outcome: "ok".into(),
        ..Event::default()
    }
}

/// The known-answer records, `tests/data/audit-v1.json` (FORMAT.md §5), in both directions:
/// appending its events to a new chain writes its lines byte for byte, and its lines verify.
#[test]
fn the_known_answer_records_are_written_and_verified() {
    #[derive(Deserialize)]
    struct Vectors {
        master_key: String,
        events: Vec<Event>,
        lines: Vec<String>,
    }
    let file: Vectors =
        serde_json::from_str(include_str!("../../../tests/data/audit-v1.json")).unwrap();
    let master = MasterKey::from_base64(&file.master_key, "vectors").unwrap();
    let mut chain = Chain::new(AuditKey::derive(&master));
    let written: Vec<String> = file.events.into_iter().map(|e| chain.append(e)).collect();
    assert_eq!(written, file.lines);
    let v = check(&master, &file.lines);
    assert_eq!((v.good, v.first_bad), (3, None));
    assert_eq!(
        v.head.as_deref(),
        file.lines[2].get(file.lines[2].len() - 66..file.lines[2].len() - 2)
    );
}

fn log(key: &MasterKey, n: u64) -> Vec<String> {
    let mut chain = Chain::new(AuditKey::derive(key));
    (0..n).map(|i| chain.append(event(i))).collect()
}

fn check(key: &MasterKey, lines: &[String]) -> Verification {
    check_after(key, lines, None)
}

fn check_after(key: &MasterKey, lines: &[String], after: Option<[u8; 32]>) -> Verification {
    let text = lines.join("\n") + "\n";
    verify(
        &AuditKey::derive(key),
        std::io::Cursor::new(text.trim_end_matches('\n').as_bytes().to_vec()),
        after,
    )
    .unwrap()
}

#[test]
fn an_untouched_log_verifies() {
    let key = MasterKey::generate();
    let v = check(&key, &log(&key, 5));
    assert_eq!((v.good, v.first_bad), (5, None));
    assert_eq!(
        check(&MasterKey::generate(), &log(&key, 2))
            .first_bad
            .unwrap()
            .0,
        1,
        "another key fails"
    );
}

#[test]
fn edits_deletions_swaps_and_truncation_are_found() {
    let key = MasterKey::generate();
    let lines = log(&key, 6);
    let mut edited = lines.clone();
    edited[2] = edited[2].replace("\"app\"", "\"eve\"");
    assert_eq!(check(&key, &edited).first_bad.unwrap().0, 3);
    let mut deleted = lines.clone();
    deleted.remove(3);
    assert_eq!(check(&key, &deleted).first_bad.unwrap().0, 4);
    let mut swapped = lines.clone();
    swapped.swap(1, 2);
    assert_eq!(check(&key, &swapped).first_bad.unwrap().0, 2);
    let mut cut = lines.clone();
    let last = cut.pop().unwrap();
    cut.push(last[..last.len() - 10].to_owned());
    assert_eq!(check(&key, &cut).first_bad.unwrap().0, 6);
    let mut first_gone = lines.clone();
    first_gone.remove(0);
    assert_eq!(check(&key, &first_gone).first_bad.unwrap().0, 1);
}

#[test]
fn a_resumed_chain_continues() {
    let key = MasterKey::generate();
    let mut lines = log(&key, 3);
    let mut chain = Chain::resume(AuditKey::derive(&key), lines.last().map(String::as_str));
    lines.push(chain.append(event(9)));
    assert_eq!(check(&key, &lines).good, 4);
}

/// A log that continues a chain from an earlier file verifies only after that file or
/// with the head it continues: removing every record before a reopening is found.
#[test]
fn a_continued_chain_needs_what_came_before() {
    let key = MasterKey::generate();
    let mut chain = Chain::new(AuditKey::derive(&key));
    let first_file: Vec<String> = (0..3).map(|i| chain.append(event(i))).collect();
    let head: [u8; 32] = hex::decode(chain.head()).unwrap().try_into().unwrap();
    let mut reopened = event(3);
    reopened.event = "audit-reopened".into();
    let second_file: Vec<String> = std::iter::once(chain.append(reopened))
        .chain((4..6).map(|i| chain.append(event(i))))
        .collect();
    let alone = check(&key, &second_file);
    assert_eq!(alone.good, 0);
    assert!(alone
        .first_bad
        .unwrap()
        .1
        .contains("continues one whose head was"));
    assert_eq!(check_after(&key, &second_file, Some(head)).good, 3);
    assert_eq!(
        check_after(&key, &second_file, Some([7; 32]))
            .first_bad
            .unwrap()
            .0,
        1,
        "a wrong head fails"
    );
    let both: Vec<String> = first_file.iter().chain(&second_file).cloned().collect();
    assert_eq!(check(&key, &both).good, 6);
    // Records cut from the front of the second file: found even with the head.
    assert_eq!(
        check_after(&key, &second_file[1..], Some(head))
            .first_bad
            .unwrap()
            .0,
        1
    );
}

/// A last line cut short by a crash, noted by the server when it resumed the chain after
/// it, is reported, and the chain verifies around it; an unnoted one, or one in the middle
/// that the next record does not continue around, fails.
#[test]
fn a_line_cut_short_and_noted_is_reported_not_fatal() {
    let key = MasterKey::generate();
    let mut chain = Chain::new(AuditKey::derive(&key));
    let mut lines: Vec<String> = (0..3).map(|i| chain.append(event(i))).collect();
    lines.push("{\"seq\":99,\"prev\":\"ab".to_owned());
    let cut = check(&key, &lines);
    assert_eq!(cut.first_bad.unwrap().0, 4, "an unnoted cut line fails");
    let mut resumed = event(4);
    resumed.event = "audit-resumed".into();
    resumed.detail = Some(format!("{INCOMPLETE_LINE} (18 bytes)"));
    lines.push(chain.append(resumed));
    lines.push(chain.append(event(5)));
    let v = check(&key, &lines);
    assert_eq!((v.good, v.first_bad, v.incomplete), (5, None, vec![4]));
    // Without the note, the same layout fails at the cut line.
    let mut unnoted = lines.clone();
    unnoted[4] = Chain::resume(AuditKey::derive(&key), Some(&lines[2])).append(event(4));
    assert_eq!(check(&key, &unnoted).first_bad.unwrap().0, 4);
}

/// A line whose last 74 bytes start inside a multi-byte character is not a record (it
/// used to panic the reader: the fuzz target found it).
#[test]
fn a_line_split_inside_a_character_is_refused_not_a_panic() {
    let key = MasterKey::generate();
    let line = format!("a{}\"}}", "\u{e9}".repeat(40));
    let v = check(&key, std::slice::from_ref(&line));
    assert_eq!(v.first_bad.unwrap().0, 1);
    assert!(Chain::resume(AuditKey::derive(&key), Some(&line)).at_start());
}
