//! SBM: sector bitmap contents of differencing disks (CATALOGUE 2.6). Each chunk's
//! bitmap block (1 MiB) is read once and judged slice by slice against its payload entries.

use super::sink::Sink;
use super::{Pass, Scope, hex, id};
use crate::findings::Loc;
use crate::format::bat::{self, SECTOR_BITMAP_BLOCK_SIZE, SECTORS_PER_BITMAP};
use crate::model::{DiskType, Model, nonzero_byte};

pub const PASSES: &[Pass] = &[Pass {
    ids: &[
        id::SBM_001,
        id::SBM_002,
        id::SBM_003,
        id::SBM_004,
        id::SBM_005,
    ],
    scope: Scope::Views,
    run,
}];

fn run(m: &Model, s: &mut Sink) {
    let (Some(g), Some(DiskType::Differencing)) = (m.geometry, m.disk_type) else {
        return;
    };
    let c = g.chunk_ratio;
    let slice_len = (g.block_size / (8 * g.logical_sector_size)) as usize;
    let mut bitmap = vec![0u8; SECTOR_BITMAP_BLOCK_SIZE as usize];
    for chunk in 0..g.sector_bitmap_blocks {
        let entries = m.bat_entries(chunk * (c + 1), c + 1);
        let Some(sb) = entries.get(c as usize) else {
            break;
        };
        if sb.state() != bat::SB_BLOCK_PRESENT || sb.file_offset() == 0 {
            continue;
        }
        let base = sb.file_offset();
        if base
            .checked_add(SECTOR_BITMAP_BLOCK_SIZE)
            .is_none_or(|end| end > m.file_size)
        {
            continue; // BAT-014 reports it
        }
        m.read_padded(base, &mut bitmap);
        for (k, e) in entries[..c as usize].iter().enumerate() {
            let block = chunk * c + k as u64;
            if block >= g.payload_blocks {
                break;
            }
            let off = k * slice_len;
            let slice = &bitmap[off..off + slice_len];
            let at = Loc::at(base + off as u64, slice_len as u64);
            let ones = slice.iter().all(|&b| b == 0xFF);
            let zeros = nonzero_byte(slice).is_none();
            let name = || format!("sector_bitmap[{chunk}].block[{block}]");
            match e.state() {
                bat::PAYLOAD_BLOCK_PARTIALLY_PRESENT if ones => s.emit(id::SBM_002, at, || {
                    (name(), format!("PARTIALLY_PRESENT block {block} has every sector bit set: it could be FULLY_PRESENT, and readers read it the same either way"))
                }),
                bat::PAYLOAD_BLOCK_PARTIALLY_PRESENT if zeros => s.emit(id::SBM_003, at, || {
                    (name(), format!("PARTIALLY_PRESENT block {block} has no sector bit set: every read goes to the parent, so its data at {} in this file is not part of the disk and may hold old data", hex(e.file_offset())))
                }),
                bat::PAYLOAD_BLOCK_FULLY_PRESENT if !ones => s.emit(id::SBM_004, at, || {
                    let clear: u32 = slice.iter().map(|b| b.count_zeros()).sum();
                    let how = if zeros {
                        "no bit is set (a writer that writes whole blocks need not set them)".to_string()
                    } else {
                        format!("{clear} of {} bits are clear", slice_len * 8)
                    };
                    (name(), format!("FULLY_PRESENT block {block}: {how}; the bitmap is not consulted for a FULLY_PRESENT block, every sector is read from this file"))
                }),
                0..=3 if !zeros => s.emit(id::SBM_005, at, || {
                    (
                        name(),
                        format!("{} block {block} has set bits in its bitmap slice (stale; the state governs): they have no effect, but show which sectors were once written", bat::payload_state_name(e.state())),
                    )
                }),
                _ => {}
            }
        }
        if chunk + 1 == g.sector_bitmap_blocks {
            beyond_disk(m, s, chunk, base, &bitmap);
        }
    }
}

/// SBM-001: bits of the last bitmap block for sectors at or past the end of the disk.
fn beyond_disk(m: &Model, s: &mut Sink, chunk: u64, base: u64, bitmap: &[u8]) {
    let Some(g) = m.geometry else { return };
    let sectors = g.virtual_disk_size / g.logical_sector_size;
    let first_beyond = sectors.saturating_sub(chunk * SECTORS_PER_BITMAP);
    if first_beyond >= SECTORS_PER_BITMAP {
        return;
    }
    let bit_set = |bit: u64| bitmap[(bit / 8) as usize] & (1 << (bit % 8)) != 0;
    // Partial first byte bit by bit, then whole bytes.
    let byte_start = first_beyond.div_ceil(8);
    let found = (first_beyond..(byte_start * 8).min(SECTORS_PER_BITMAP))
        .find(|&b| bit_set(b))
        .or_else(|| {
            nonzero_byte(&bitmap[byte_start as usize..]).map(|i| {
                (byte_start + i as u64) * 8
                    + bitmap[byte_start as usize + i].trailing_zeros() as u64
            })
        });
    if let Some(bit) = found {
        let at = base + bit / 8;
        s.emit(id::SBM_001, Loc::at(at, base + SECTOR_BITMAP_BLOCK_SIZE - at), || {
            (
                format!("sector_bitmap[{chunk}]"),
                format!(
                    "bit for sector {} is set but the disk has {sectors} sectors (byte {} of the bitmap block): readers ignore it; it may be left from a former larger disk",
                    chunk * SECTORS_PER_BITMAP + bit,
                    hex(bit / 8)
                ),
            )
        });
    }
}
