//! What replaying the active sequence does to this file (LOG-003..006, LOG-072).

use super::*;

/// LOG-003..006, LOG-072: what replaying the active sequence does to this file.
pub(super) fn outcome(m: &Model, log: &Log, head: &Entry, s: &mut Sink) {
    let size = m.file_size;
    let hh = &head.header;
    if let Some(why) = log.replay_impossible() {
        s.emit(id::LOG_072, Loc::at(log.offset, log.length), || {
            (
                entry_path(head),
                format!(
                    "{why}; a conforming reader must replay before it reads, so it cannot open the image ({})",
                    qemu_does(log)
                ),
            )
        });
    }
    if size < hh.flushed_file_offset {
        s.emit(id::LOG_005, Loc::at(size, hh.flushed_file_offset - size), || {
            (
                entry_path(head),
                format!(
                    "file size {} is below the head entry's FlushedFileOffset {}: the file was truncated after the log was written; a conforming reader must refuse it (the REPLAYED view is hypothetical)",
                    hex(size),
                    hex(hh.flushed_file_offset)
                ),
            )
        });
    }
    if size < hh.last_file_offset {
        s.emit(id::LOG_006, Loc::at(size, hh.last_file_offset - size), || {
            (
                entry_path(head),
                format!(
                    "file size {} is below the head entry's LastFileOffset {}: replay extends the file; structures may lie past the current end",
                    hex(size),
                    hex(hh.last_file_offset)
                ),
            )
        });
    }
    if !log.dirty() {
        s.emit(id::LOG_004, Loc::at(log.offset, log.length), || {
            (
                "log".into(),
                format!(
                    "the active sequence ({} entries, head SequenceNumber {}) is already applied: every target holds the logged bytes",
                    log.scan(Mode::Strict).map_or(0, |sc| sc.replayed.len()),
                    head.seq()
                ),
            )
        });
        return;
    }
    let names = Namer::new(m);
    for c in &log.changes {
        s.emit(id::LOG_003, Loc::at(c.offset, c.length), || {
            let what = names.range(c.offset, c.offset + c.length);
            (
                what.clone(),
                format!(
                    "replay pending: it changes bytes in [{}, {}) ({what}); the RAW bytes are stale and the REPLAYED view is authoritative, so readers that ignore the log see a different disk; `vhdx-check replay` writes the replayed copy",
                    hex(c.offset),
                    hex(c.offset + c.length)
                ),
            )
        });
    }
    if log.replayed_size != size {
        s.emit(
            id::LOG_003,
            Loc::at(size, log.replayed_size.saturating_sub(size)),
            || {
                (
                    "file".into(),
                    format!(
                        "replay changes the file size from {} to {} (a reader replays before it reads; `vhdx-check replay` writes the replayed copy)",
                        hex(size),
                        hex(log.replayed_size)
                    ),
                )
            },
        );
    }
}
