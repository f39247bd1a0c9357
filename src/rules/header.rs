//! HDR: the two headers and the choice of the current one (CATALOGUE 2.2), RAW view.

use super::sink::Sink;
use super::{Pass, Scope, hex, id};
use crate::findings::Loc;
use crate::format::MIB;
use crate::format::crc;
use crate::format::header::{self, CHECKSUM_FIELD, DEFINED, SIZE, SLOT};
use crate::model::{HeaderChoice, HeaderCopy, Model};

pub const PASSES: &[Pass] = &[
    Pass {
        ids: &[
            id::HDR_001,
            id::HDR_002,
            id::HDR_008,
            id::HDR_017,
            id::HDR_018,
        ],
        scope: Scope::Raw,
        run: each_copy,
    },
    Pass {
        ids: &[
            id::HDR_003,
            id::HDR_004,
            id::HDR_005,
            id::HDR_006,
            id::HDR_021,
            id::HDR_022,
            id::HDR_023,
        ],
        scope: Scope::Raw,
        run: pair,
    },
    Pass {
        ids: &[
            id::HDR_007,
            id::HDR_009,
            id::HDR_010,
            id::HDR_011,
            id::HDR_012,
            id::HDR_013,
            id::HDR_014,
            id::HDR_015,
            id::HDR_016,
            id::HDR_019,
            id::HDR_020,
            id::HDR_024,
            id::HDR_025,
        ],
        scope: Scope::Raw,
        run: current,
    },
];

fn name(i: usize) -> String {
    format!("header[{}]", i + 1)
}

/// What an invalid header `i` leaves readers with: the other copy, or nothing.
fn fallback(m: &Model, i: usize) -> String {
    let other = 1 - i;
    if m.headers[other].valid() {
        format!("the image still opens from header {}", other + 1)
    } else {
        format!(
            "header {} is invalid too, so no reader can open this image",
            other + 1
        )
    }
}

fn each_copy(m: &Model, s: &mut Sink) {
    let current = m.header_choice.index();
    for (i, c) in m.headers.iter().enumerate() {
        let off = c.slot.offset;
        let h = &c.header;
        if !c.signature_ok {
            s.emit(id::HDR_001, Loc::at(off, 4), || {
                (
                    format!("{}.signature", name(i)),
                    format!(
                        "header {} at {} is invalid: its signature is {} instead of \"head\"{}; {}",
                        i + 1,
                        hex(off),
                        crate::format::display::preview(&h.signature),
                        c.slot.truncation_note(),
                        fallback(m, i)
                    ),
                )
            });
        }
        if !c.checksum_ok {
            s.emit(id::HDR_002, Loc::at(off, SIZE as u64), || {
                (
                    format!("{}.checksum", name(i)),
                    format!(
                        "header {} at {} is invalid: its checksum {:#010x} does not match the CRC-32C {:#010x} of its 4096 bytes{}; {}",
                        i + 1,
                        hex(off),
                        h.checksum,
                        c.computed_checksum,
                        other_span_match(c),
                        fallback(m, i)
                    ),
                )
            });
        }
        if c.valid() && current != Some(i) && h.version != 1 {
            s.emit(id::HDR_008, Loc::at(off + 66, 2), || {
                (
                    format!("{}.version", name(i)),
                    format!(
                        "non-current header {} has Version {} (must be 1); readers use the other header, so this only records an odd earlier state",
                        i + 1,
                        h.version
                    ),
                )
            });
        }
        if c.valid()
            && let Some(at) = c.slot.first_nonzero(DEFINED, SIZE)
        {
            let first = off + at as u64;
            s.emit(id::HDR_017, Loc::at(first, off + SIZE as u64 - first), || {
                (
                    format!("{}.reserved", name(i)),
                    format!(
                        "header {} reserved bytes 80..4095 are not zero (first at {}); readers ignore them: {}",
                        i + 1,
                        hex(first),
                        crate::format::display::preview(&c.slot.get(at, SIZE))
                    ),
                )
            });
        }
        if let Some(at) = c.slot.first_nonzero(SIZE, SLOT) {
            let first = off + at as u64;
            s.emit(id::HDR_018, Loc::at(first, off + SLOT as u64 - first), || {
                (
                    format!("{}.slot_padding", name(i)),
                    format!(
                        "bytes after header {}'s 4 KiB structure (outside its checksum) hold data at {}; readers ignore them and they are not part of the disk: {}",
                        i + 1,
                        hex(first),
                        crate::format::display::preview(&c.slot.get(at, SLOT))
                    ),
                )
            });
        }
    }
}

/// For HDR-002: does the checksum match a non-conforming span (CATALOGUE A4)?
fn other_span_match(c: &HeaderCopy) -> &'static str {
    let b = c.slot.get(0, SLOT);
    if crc::crc32c_with_zeroed_field(&b[..SLOT], CHECKSUM_FIELD) == c.header.checksum {
        " (it matches the whole 64 KiB slot: a non-conforming writer)"
    } else if crc::crc32c_with_zeroed_field(&b[..DEFINED], CHECKSUM_FIELD) == c.header.checksum {
        " (it matches only the 80 defined bytes: a non-conforming writer)"
    } else {
        ""
    }
}

fn pair(m: &Model, s: &mut Sink) {
    let [a, b] = &m.headers;
    let both = Loc::at(
        header::OFFSETS[0],
        header::OFFSETS[1] + SIZE as u64 - header::OFFSETS[0],
    );
    match m.header_choice {
        HeaderChoice::NoneValid => s.emit(id::HDR_003, both, || {
            ("headers".into(), "neither header is valid (signature or checksum): the file has no current header, so no reader can open this image".into())
        }),
        HeaderChoice::TieDiffer => s.emit(id::HDR_004, both, || {
            (
                "headers".into(),
                format!(
                    "both headers are valid with equal SequenceNumber {} but different contents: no current header exists, so readers may refuse the image or pick either; this report uses header 1",
                    a.header.sequence_number
                ),
            )
        }),
        HeaderChoice::TieIdentical => s.emit(id::HDR_005, both, || {
            (
                "headers".into(),
                format!(
                    "both headers are identical with equal SequenceNumber {}: the specification defines no current header; header 1 used (as QEMU does)",
                    a.header.sequence_number
                ),
            )
        }),
        HeaderChoice::OnlyValid(i) => {
            let bad = 1 - i;
            s.emit(id::HDR_006, Loc::at(header::OFFSETS[bad], SIZE as u64), || {
                (
                    name(bad),
                    format!("header {} is invalid; the image opens from header {}, but one more damaged header would leave no valid one", bad + 1, i + 1),
                )
            })
        }
        HeaderChoice::Greater(_) => {}
    }
    if !(a.valid() && b.valid()) {
        return;
    }
    let (ha, hb) = (&a.header, &b.header);
    if ha.sequence_number.abs_diff(hb.sequence_number) != 1 {
        s.emit(id::HDR_021, both, || {
            (
                "headers".into(),
                format!(
                    "header SequenceNumbers {} and {} differ by {} (a writer's update always writes current+1)",
                    ha.sequence_number,
                    hb.sequence_number,
                    ha.sequence_number.abs_diff(hb.sequence_number)
                ),
            )
        });
    }
    if ha.log_offset != hb.log_offset || ha.log_length != hb.log_length {
        s.emit(id::HDR_022, both, || {
            (
                "headers".into(),
                format!(
                    "headers locate the log differently: header 1 [{}, +{}), header 2 [{}, +{}); only the current copy counts, the other location may hold history",
                    hex(ha.log_offset),
                    hex(ha.log_length as u64),
                    hex(hb.log_offset),
                    hex(hb.log_length as u64)
                ),
            )
        });
    }
    let mut differ = Vec::new();
    if ha.file_write_guid != hb.file_write_guid {
        differ.push("FileWriteGuid");
    }
    if ha.data_write_guid != hb.data_write_guid {
        differ.push("DataWriteGuid");
    }
    if ha.log_guid != hb.log_guid {
        differ.push("LogGuid");
    }
    if !differ.is_empty() {
        s.emit(id::HDR_023, both, || {
            (
                "headers".into(),
                format!("{} differ between the two headers: the non-current header keeps the values from before the last update", differ.join(", ")),
            )
        });
    }
}

fn current(m: &Model, s: &mut Sink) {
    let Some(i) = m.header_choice.index() else {
        return;
    };
    let h = &m.headers[i].header;
    let off = header::OFFSETS[i];
    let st = |f: &str| format!("{}.{f}", name(i));
    if h.version != 1 {
        s.emit(id::HDR_007, Loc::at(off + 66, 2), || {
            (st("version"), format!("current header {} has Version {} (must be 1): readers must not interpret the file, and the rest of this report is best-effort", i + 1, h.version))
        });
    }
    if h.log_version != 0 {
        let lv = Loc::at(off + 64, 2);
        if !h.log_guid.is_zero() {
            s.emit(id::HDR_009, lv, || {
                (
                    st("log_version"),
                    format!(
                        "LogVersion is {} (must be 0) and LogGuid is set: the log is in an unknown format, so readers must not open the file",
                        h.log_version
                    ),
                )
            });
        } else {
            s.emit(id::HDR_010, lv, || {
                (
                    st("log_version"),
                    format!("LogVersion is {} (must be 0); LogGuid is zero, so no log is replayed and readers still open the file", h.log_version),
                )
            });
        }
    }
    let log_len = h.log_length as u64;
    if log_len % MIB != 0 {
        s.emit(id::HDR_011, Loc::at(off + 68, 4), || {
            (
                st("log_length"),
                format!("LogLength {} is not a multiple of 1 MiB: the log's extent is invalid, so readers may refuse to open or replay it", hex(log_len)),
            )
        });
    }
    if h.log_offset % MIB != 0 {
        s.emit(id::HDR_012, Loc::at(off + 72, 8), || {
            (
                st("log_offset"),
                format!("LogOffset {} is not a multiple of 1 MiB: the log's location is invalid, so readers may refuse to open or replay it", hex(h.log_offset)),
            )
        });
    }
    if log_len > 0 && h.log_offset < MIB {
        s.emit(id::HDR_013, Loc::at(off + 72, 8), || {
            (
                st("log_offset"),
                format!(
                    "log at {} lies inside the 1 MiB header section: writing or replaying it would overwrite the headers",
                    hex(h.log_offset)
                ),
            )
        });
    }
    if !h.log_guid.is_zero() && log_len == 0 {
        s.emit(id::HDR_014, Loc::at(off + 48, 16), || {
            (
                st("log_guid"),
                format!(
                    "LogGuid {} is set but LogLength is 0: the header claims an active log that has no space, so nothing can be replayed",
                    h.log_guid
                ),
            )
        });
    }
    if h.log_guid.is_zero() && log_len == 0 {
        s.emit(id::HDR_015, Loc::at(off + 68, 4), || {
            (
                st("log_length"),
                "LogLength is 0: the file has no journal and cannot be updated safely".into(),
            )
        });
    }
    if log_len > 0 {
        match h.log_offset.checked_add(log_len) {
            None => s.emit(id::HDR_016, Loc::at(off + 68, 12), || {
                (
                    st("log_offset"),
                    format!(
                        "LogOffset {} + LogLength {} overflows: the log cannot be located",
                        hex(h.log_offset),
                        hex(log_len)
                    ),
                )
            }),
            Some(end) if end > m.file_size => {
                s.emit(id::HDR_016, Loc::at(h.log_offset, log_len), || {
                    (
                        "log".into(),
                        format!(
                            "log [{}, {}) extends past the end of the file ({}): the file is truncated or the header is wrong, and a pending replay cannot be read whole",
                            hex(h.log_offset),
                            hex(end),
                            hex(m.file_size)
                        ),
                    )
                })
            }
            _ => {}
        }
    }
    if h.file_write_guid.is_zero() {
        s.emit(id::HDR_019, Loc::at(off + 16, 16), || {
            (st("file_write_guid"), "FileWriteGuid is all zero: the last writer did not set a fresh value when it opened the file".into())
        });
    }
    if h.data_write_guid.is_zero() {
        s.emit(id::HDR_020, Loc::at(off + 32, 16), || {
            (
                st("data_write_guid"),
                "DataWriteGuid is all zero (child disks cannot link to this one)".into(),
            )
        });
    }
    if !h.log_guid.is_zero() {
        s.emit(id::HDR_024, Loc::at(off + 48, 16), || {
            (
                st("log_guid"),
                format!(
                    "LogGuid {} is set: the log may hold entries to replay",
                    h.log_guid
                ),
            )
        });
    }
    let lg = h.log_guid;
    if (!h.file_write_guid.is_zero() && h.file_write_guid == h.data_write_guid)
        || (!lg.is_zero() && (lg == h.file_write_guid || lg == h.data_write_guid))
    {
        s.emit(id::HDR_025, Loc::at(off + 16, 48), || {
            (st("guids"), "FileWriteGuid, DataWriteGuid and LogGuid are not independent values (two are equal)".into())
        });
    }
}
