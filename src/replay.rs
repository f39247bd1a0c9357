//! `vhdx-check replay IMAGE OUT`: writes the REPLAYED view (the strict scan's active
//! sequence applied) to a new file, and marks the log empty there as a replaying writer
//! does: both headers get LogGuid = 0 and new SequenceNumbers. IMAGE is only ever read;
//! OUT must not exist. OUT appears only complete: it is written as an unnamed file in its
//! directory (O_TMPFILE) or, where the filesystem has none, as `.NAME.vhdx-check-tmp.PID`,
//! synced, and then given its name by a link or rename that fails if OUT appeared meanwhile.

use crate::format::header;
use crate::io::{self, FileReader, ReadAt};
use crate::model::Model;
use crate::model::log::Mode;
use crate::model::replay::ReplayedView;
use crate::newfile::write_new;
use crate::report::path_line;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// What a replay wrote.
#[derive(Debug, Clone)]
pub struct Replayed {
    pub entries: usize,
    pub head_sequence: u64,
    pub descriptors: usize,
    pub changed_ranges: usize,
    pub changed_bytes: u64,
    pub size: u64,
    /// Things the user should know (a truncated file, an analysis bound).
    pub warnings: Vec<String>,
}

/// Replays `image` into the new file `out`. Errors are one-line reasons (exit 2).
pub fn replay(image: &Path, out: &Path) -> Result<Replayed, String> {
    let file =
        FileReader::open(image).map_err(|e| format!("cannot read {}: {e}", path_line(image)))?;
    // A read error or a change of IMAGE voids what was read: no copy is left.
    let src = io::Watch::new(&file);
    let model = Model::build(&src);
    let judged = replay_from(&src, &model, out);
    (src.verify()).map_err(|e| format!("{}: {e}", path_line(image)))?;
    judged
}

/// [`replay`] of an opened IMAGE; the copy is removed when a read of `src` failed.
fn replay_from(src: &io::Watch, model: &Model, out: &Path) -> Result<Replayed, String> {
    let Some(hi) = model.header_choice.index() else {
        return Err("nothing to replay: no valid header".into());
    };
    let Some(log) = model.log() else {
        return Err("nothing to replay: the current header locates no usable log".into());
    };
    if log.log_guid.is_zero() {
        return Err("nothing to replay: LogGuid is zero (the log is empty by definition)".into());
    }
    let (Some(plan), Some(scan)) = (log.plan.as_ref(), log.scan(Mode::Strict)) else {
        return Err("nothing to replay: the log holds no valid sequence (LOG-002)".into());
    };
    let head = log
        .head()
        .ok_or("nothing to replay: the log holds no valid sequence (LOG-002)")?;
    if let Some(why) = log.replay_impossible() {
        return Err(format!("{why} (LOG-072)"));
    }
    let mut warnings = log.bound.clone();
    if src.len() < head.header.flushed_file_offset {
        warnings.push(format!(
            "the file is shorter than the head entry's FlushedFileOffset ({:#x} < {:#x}, LOG-005): a conforming reader refuses it; the copy is hypothetical",
            src.len(),
            head.header.flushed_file_offset
        ));
    }
    let view = ReplayedView::new(src, plan);
    write_new(out, |file| {
        copy_data(&view, file)?;
        file.set_len(view.len())?;
        clear_log_guid(model, hi, file)?;
        // A read error or a change of IMAGE voids the copy before it gets its name.
        src.verify()
            .map_err(|e| std::io::Error::other(e.to_string()))
    })?;
    Ok(Replayed {
        entries: scan.replayed.len(),
        head_sequence: head.seq(),
        descriptors: log.applied.len(),
        changed_ranges: log.changes.len(),
        changed_bytes: log.changes.iter().map(|c| c.length).sum(),
        size: view.len(),
        warnings,
    })
}

/// Copies every data range of `view` (holes stay holes in the new file).
fn copy_data(view: &dyn ReadAt, out: &File) -> std::io::Result<()> {
    let mut buf = vec![0u8; io::CHUNK];
    let mut pos = 0u64;
    while let Some(d) = view.data_from(pos) {
        let end = view.hole_from(d).max(d + 1).min(view.len());
        let mut at = d;
        while at < end {
            let n = ((end - at) as usize).min(buf.len());
            io::read_padded(view, at, &mut buf[..n]);
            if io::nonzero_byte(&buf[..n]).is_some() {
                out.write_all_at(&buf[..n], at)?;
            }
            at += n as u64;
        }
        pos = end;
    }
    Ok(())
}

/// Writes both header slots from the current header with LogGuid = 0: the other slot
/// gets SequenceNumber + 1, the current one + 2 (two successive header updates).
fn clear_log_guid(model: &Model, current: usize, out: &File) -> std::io::Result<()> {
    let slot = &model.headers[current].slot;
    let mut h = slot.get(0, header::SIZE).into_owned();
    let seq = model.headers[current].header.sequence_number;
    h[48..64].fill(0);
    for (i, bump) in [(1 - current, 1u64), (current, 2u64)] {
        h[8..16].copy_from_slice(&seq.wrapping_add(bump).to_le_bytes());
        h[4..8].fill(0);
        let crc = header::computed_checksum(&h);
        h[4..8].copy_from_slice(&crc.to_le_bytes());
        out.write_all_at(&h, header::OFFSETS[i])?;
    }
    Ok(())
}
