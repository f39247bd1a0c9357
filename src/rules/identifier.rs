//! FTI: the file type identifier (CATALOGUE 2.1), RAW view.

use super::sink::Sink;
use super::{Pass, Scope, hex, id};
use crate::findings::Loc;
use crate::format::foreign::{self, Foreign};
use crate::format::identifier::{self, CREATOR_LEN, CREATOR_OFFSET, RESERVED_OFFSET};
use crate::model::{HEADER_SECTION, Model};

pub const PASSES: &[Pass] = &[
    NOT_VHDX,
    Pass {
        ids: &[
            id::FTI_001,
            id::FTI_002,
            id::FTI_003,
            id::FTI_004,
            id::FTI_005,
            id::FTI_006,
        ],
        scope: Scope::Raw,
        run,
    },
];

/// The one pass that runs on a file which is another format (or empty): no VHDX rule
/// can apply to it, so the engine runs this alone.
pub const NOT_VHDX: Pass = Pass {
    ids: &[id::FTI_007],
    scope: Scope::Raw,
    run: run_not_vhdx,
};

/// The other format `m` is, when it lacks the VHDX signature and holds another's magic.
pub fn foreign_format(m: &Model) -> Option<Foreign> {
    let head = m.identifier_slot.get(0, foreign::HEAD);
    let tail_len = m.file_size.min(foreign::TAIL as u64);
    let mut tail = vec![0u8; tail_len as usize];
    let got = m.read_padded(m.file_size - tail_len, &mut tail);
    tail.truncate(got);
    foreign::detect(&head, &tail, m.file_size)
}

fn run_not_vhdx(m: &Model, s: &mut Sink) {
    let Some(f) = foreign_format(m) else {
        return;
    };
    let (offset, length) = f.magic_at(m.file_size);
    s.emit(id::FTI_007, Loc::at(offset, length), || {
        let what = if f == Foreign::Empty {
            "not a VHDX file: the file is empty (0 bytes)".to_string()
        } else {
            format!(
                "not a VHDX file: the file ({} bytes) is {}",
                m.file_size,
                f.describe()
            )
        };
        (
            "file".into(),
            format!("{what}; no VHDX structure was checked"),
        )
    });
}

fn run(m: &Model, s: &mut Sink) {
    if m.file_size < HEADER_SECTION {
        s.emit(id::FTI_001, Loc::at(0, m.file_size), || {
            (
                "file".into(),
                format!(
                    "file is {} bytes, smaller than the 1 MiB header section; missing bytes read as zero",
                    m.file_size
                ),
            )
        });
    }
    let id = &m.identifier;
    if &id.signature != identifier::SIGNATURE {
        s.emit(id::FTI_002, Loc::at(0, 8), || {
            (
                "file_type_identifier.signature".into(),
                format!(
                    "signature is {} instead of \"vhdxfile\"",
                    crate::format::display::preview(&id.signature)
                ),
            )
        });
    }
    let creator_loc = Loc::at(CREATOR_OFFSET as u64, CREATOR_LEN as u64);
    if !id.creator_well_formed {
        s.emit(id::FTI_003, creator_loc, || {
            (
                "file_type_identifier.creator".into(),
                "Creator is not well-formed UTF-16LE (unpaired surrogate)".into(),
            )
        });
    }
    s.emit(id::FTI_004, creator_loc, || {
        let msg = if id.creator.is_empty() {
            "Creator is empty".to_string()
        } else {
            let shown: String = id.creator.chars().take(80).collect();
            let more = if id.creator.chars().count() > 80 {
                "…"
            } else {
                ""
            };
            format!("Creator: {shown:?}{more}")
        };
        ("file_type_identifier.creator".into(), msg)
    });
    if id.creator_residue {
        let nul = id.creator_nul_at.unwrap_or(CREATOR_OFFSET) as u64;
        let end = (CREATOR_OFFSET + CREATOR_LEN) as u64;
        s.emit(id::FTI_005, Loc::at(nul, end - nul), || {
            let tail = m.identifier_slot.get(nul as usize, end as usize);
            (
                "file_type_identifier.creator".into(),
                format!(
                    "non-zero code units after the Creator's NUL terminator at {}: {}",
                    hex(nul),
                    crate::format::display::preview_utf16(&tail)
                ),
            )
        });
    }
    let slot = &m.identifier_slot;
    if let Some(i) = slot.first_nonzero(RESERVED_OFFSET, slot.len) {
        let first = i as u64;
        let last = (slot.nonzero_end() - 1) as u64;
        s.emit(id::FTI_006, Loc::at(first, last + 1 - first), || {
            (
                "file_type_identifier.reserved".into(),
                format!(
                    "reserved bytes {}..{} of the identifier slot hold data: {}",
                    hex(first),
                    hex(last + 1),
                    crate::format::display::preview(&slot.get(first as usize, slot.len))
                ),
            )
        });
    }
}
