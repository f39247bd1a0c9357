//! LOG tests of what the active sequence's descriptors write (their targets).

use super::*;

// ---- descriptor targets (active sequence) ------------------------------------------------------

/// The dirty baseline's entry plus `extra` descriptors, written as the only (active) entry.
pub(super) fn active_with(extra: impl FnOnce(&Built, LogEntry) -> LogEntry) -> (Built, LogPlace) {
    let mut img = clean();
    let e = extra(&img, zero_block(&img, BLOCK));
    let p = img.write_log(&[e])[0];
    (img, p)
}

#[test]
fn log_040_target_in_the_file_type_identifier() {
    let (img, p) = active_with(|img, e| e.data(0, img.read(0, 4096)));
    let r = fires_at(
        &dirty().0,
        &img,
        "LOG-040",
        Error,
        &[(p, At::Part("descriptor[1]"))],
    );
    undisturbed(&img, &r);
}

#[test]
fn log_041_target_in_the_header_slots() {
    let (img, p) =
        active_with(|img, e| e.data(0x10000, img.read(0x10000, 4096)).zero(0x2F000, 4096));
    let r = fires_at(
        &dirty().0,
        &img,
        "LOG-041",
        Error,
        &[
            (p, At::Part("descriptor[1]")),
            (p, At::Part("descriptor[2]")),
        ],
    );
    assert!(!r.has("LOG-040"), "{}", listing(&r));
}

#[test]
fn log_042_target_in_the_log() {
    let (img, p) = active_with(|img, e| e.zero(img.layout.log_offset + 0x80000, 4096));
    let r = fires_at(
        &dirty().0,
        &img,
        "LOG-042",
        Error,
        &[(p, At::Part("descriptor[1]"))],
    );
    undisturbed(&img, &r);
}

#[test]
fn log_043_target_in_an_allocated_payload_block() {
    let (img, p) = active_with(|img, e| {
        let block0 = img.layout.block_offset(0);
        e.data(block0 + 0x1000, img.read(block0 + 0x1000, 4096))
    });
    let r = fires_at(
        &dirty().0,
        &img,
        "LOG-043",
        Warning,
        &[(p, At::Part("descriptor[1]"))],
    );
    undisturbed(&img, &r);
}

#[test]
fn log_043_uses_the_replayed_bat() {
    // Block 0 unmapped by the same entry: its old place is no payload block any more.
    let mut img = clean();
    let block0 = img.layout.block_offset(0);
    let e = img
        .log_entry(&[(bat_at(&img, 0), &0u64.to_le_bytes())])
        .zero(block0, 4096);
    img.write_log(&[e]);
    let r = report(&img);
    assert!(!r.has("LOG-043"), "{}", listing(&r));
}

#[test]
fn log_044_target_outside_every_structure() {
    let (img, p) = active_with(|img, e| {
        let len = img.len;
        e.zero(0x60000, 4096).zero(len + 4 * MIB, 4096)
    });
    let r = fires_at(
        &dirty().0,
        &img,
        "LOG-044",
        Warning,
        &[
            (p, At::Part("descriptor[1]")),
            (p, At::Part("descriptor[2]")),
        ],
    );
    assert!(!r.has("LOG-002"), "{}", listing(&r));
}

#[test]
fn log_045_target_past_last_file_offset() {
    let (img, p) = active_with(|img, e| {
        let bat = img.layout.bat_offset;
        e.file_offsets(bat, bat)
    });
    let r = fires_at(
        &dirty().0,
        &img,
        "LOG-045",
        Warning,
        &[(p, At::Part("descriptor[0]"))],
    );
    assert!(!r.has("LOG-002") && !r.has("LOG-005"), "{}", listing(&r));
}

#[test]
fn log_046_zero_descriptor_of_length_zero() {
    let (img, p) = active_with(|img, e| e.zero(img.layout.bat_offset + 0x10000, 0));
    let r = fires_at(
        &dirty().0,
        &img,
        "LOG-046",
        Warning,
        &[(p, At::Part("descriptor[1]"))],
    );
    undisturbed(&img, &r);
}

#[test]
fn log_047_descriptors_of_one_entry_overlap() {
    let (img, p) = active_with(|img, e| {
        let bat = img.layout.bat_offset;
        e.zero(bat + 0x1000, 0x2000)
            .data(bat + 0x2000, vec![0; 4096])
    });
    let r = fires_at(&dirty().0, &img, "LOG-047", Info, &[(p, At::Within)]);
    undisturbed(&img, &r);
}
