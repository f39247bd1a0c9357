//! Where a failed entry predicate is, and what its finding says (LOG-011..038).

use super::*;

/// Where a failed predicate is: the offending descriptor or data sector, else the entry.
pub(super) fn predicate_loc(log: &Log, e: &Entry, p: Pred) -> Loc {
    let Some((i, _)) = e.slot_failure(p) else {
        return entry_loc(log, e);
    };
    let d = crate::format::log::descriptor_sectors(e.header.descriptor_count);
    let (pos, len) = match p {
        Pred::SectorSignature | Pred::SectorSequence => ((d + i as u64) * SECTOR, SECTOR),
        _ => (64 + 32 * i as u64, 32),
    };
    Loc::at(log.file_offset(e.pos + pos), len)
}

pub(super) fn predicate_message(log: &Log, e: &Entry, p: Pred) -> (String, String) {
    let h = &e.header;
    let at = hex(log.file_offset(e.pos));
    let slot = |what: &str| match e.slot_failure(p) {
        Some((first, 1)) => format!("{what} {first}"),
        Some((first, n)) => format!("{what} {first} (and {} more)", n - 1),
        None => what.to_string(),
    };
    let path = match p {
        Pred::SectorSignature | Pred::SectorSequence => {
            format!(
                "{}.data_sector[{}]",
                entry_path(e),
                e.slot_failure(p).map_or(0, |x| x.0)
            )
        }
        _ if Pred::PER_SLOT.contains(&p) => {
            format!(
                "{}.descriptor[{}]",
                entry_path(e),
                e.slot_failure(p).map_or(0, |x| x.0)
            )
        }
        _ => entry_path(e),
    };
    let msg = match p {
        Pred::Length => format!(
            "entry at {at}: EntryLength {} is 0, not a multiple of 4 KiB or larger than the log ({})",
            hex(e.length()),
            hex(log.length)
        ),
        Pred::Checksum => format!(
            "entry at {at}: checksum {:#010x} stored, {:#010x} computed over EntryLength {} (torn or altered entry)",
            h.checksum,
            e.computed_checksum.unwrap_or(0),
            hex(e.length())
        ),
        Pred::SequenceZero => format!("entry at {at}: SequenceNumber is 0"),
        Pred::LogGuid => format!(
            "entry at {at}: LogGuid {} is not the header's {} (remnant of another session, SequenceNumber {})",
            h.log_guid,
            log.log_guid,
            e.seq()
        ),
        Pred::Tail => format!(
            "entry at {at}: Tail {} is not a multiple of 4 KiB or not inside the log ({})",
            hex(h.tail as u64),
            hex(log.length)
        ),
        Pred::Reserved => format!("entry at {at}: Reserved is {:#x} (must be 0)", h.reserved),
        Pred::FlushedAlign => format!(
            "entry at {at}: FlushedFileOffset {} is not a multiple of 1 MiB",
            hex(h.flushed_file_offset)
        ),
        Pred::LastAlign => format!(
            "entry at {at}: LastFileOffset {} is not a multiple of 1 MiB",
            hex(h.last_file_offset)
        ),
        Pred::BelowOneMib => format!(
            "entry at {at}: FlushedFileOffset {} / LastFileOffset {} below 1 MiB (no VHDX file is that small)",
            hex(h.flushed_file_offset),
            hex(h.last_file_offset)
        ),
        Pred::Capacity => format!(
            "entry at {at}: EntryLength {} cannot hold {} descriptor(s) ({} descriptor sectors) and {} data sector(s)",
            hex(e.length()),
            h.descriptor_count,
            crate::format::log::descriptor_sectors(h.descriptor_count),
            e.data_descriptors
        ),
        Pred::Padding => format!(
            "entry at {at}: EntryLength {} is longer than its {} descriptor sector(s) and {} data sector(s) need",
            hex(e.length()),
            crate::format::log::descriptor_sectors(h.descriptor_count),
            e.data_descriptors
        ),
        Pred::Wraps => format!(
            "entry at {at}: runs past the end of the log ring by {} bytes (QEMU reads it wrapped, DiscUtils rejects it)",
            hex(e.pos + e.length() - log.length)
        ),
        Pred::DescriptorSignature => format!(
            "entry at {at}: {} has neither \"zero\" nor \"desc\" signature",
            slot("descriptor")
        ),
        Pred::DescriptorSequence => format!(
            "entry at {at}: {} SequenceNumber differs from the entry's {}",
            slot("descriptor"),
            e.seq()
        ),
        Pred::DescriptorAlign => format!(
            "entry at {at}: {} FileOffset is not a multiple of 4 KiB",
            slot("descriptor")
        ),
        Pred::ZeroLengthAlign => format!(
            "entry at {at}: zero {} ZeroLength is not a multiple of 4 KiB",
            slot("descriptor")
        ),
        Pred::ZeroReserved => format!(
            "entry at {at}: zero {} Reserved is not 0",
            slot("descriptor")
        ),
        Pred::TargetOverflow => format!(
            "entry at {at}: {} FileOffset + length overflows",
            slot("descriptor")
        ),
        Pred::SectorSignature => format!(
            "entry at {at}: {} does not start with \"data\"",
            slot("data sector")
        ),
        Pred::SectorSequence => format!(
            "entry at {at}: {} SequenceHigh/SequenceLow do not match SequenceNumber {:#x}",
            slot("data sector"),
            e.seq()
        ),
        Pred::Slack => format!(
            "entry at {at}: unused descriptor slot {} not zero (slack after the last descriptor)",
            slot("slot")
        ),
        Pred::Unexamined => format!("entry at {at}: not examined (analysis bound)"),
    };
    (path, msg)
}
