//! Other disk-image formats, recognised by their magic so that a file which is not a VHDX
//! at all gets one finding that names what it is (FTI-007) instead of a cascade of VHDX
//! findings. Only consulted when the VHDX signature is absent.

/// How many bytes from the start of the file [`detect`] looks at (GPT's header at 4096).
pub const HEAD: usize = 4096 + 512;
/// The VHD footer: the last 512 bytes of the file.
pub const TAIL: usize = 512;

/// A format found in place of a VHDX.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Foreign {
    /// VHD (Virtual PC, MS "VHD Image Format"): a dynamic or differencing VHD has a copy of
    /// its footer at 0, a fixed VHD only the footer in the last 512 bytes.
    Vhd { fixed: bool },
    /// QEMU's QCOW (version 1) or QCOW2 (versions 2 and 3).
    Qcow { version: u32 },
    /// VMware VMDK: a sparse extent ("KDMV"), an ESX COW extent ("COWD") or a text
    /// descriptor ("# Disk DescriptorFile").
    Vmdk { what: &'static str },
    /// VirtualBox VDI.
    Vdi,
    /// A raw disk with a GUID partition table.
    RawGpt { at: u64 },
    /// A raw disk with an MBR boot signature (0x55 0xAA at 510; a VHDX has Creator text there).
    RawMbr,
    /// No bytes at all.
    Empty,
    /// Shorter than the 64 KiB file identifier and without the VHDX signature.
    TooShort,
}

/// Where the magic is and how long it is, for the finding's location.
impl Foreign {
    pub fn magic_at(self, file_size: u64) -> (u64, u64) {
        match self {
            Foreign::Vhd { fixed: true } => (file_size.saturating_sub(TAIL as u64), 8),
            Foreign::Vhd { fixed: false } => (0, 8),
            Foreign::Qcow { .. } | Foreign::Vmdk { .. } => (0, 4),
            Foreign::Vdi => (0x40, 4),
            Foreign::RawGpt { at } => (at, 8),
            Foreign::RawMbr => (510, 2),
            Foreign::Empty | Foreign::TooShort => (0, file_size),
        }
    }

    /// "a QCOW2 image (\"QFI\\xfb\" at offset 0, version 3)".
    pub fn describe(self) -> String {
        match self {
            Foreign::Vhd { fixed: true } => {
                "a fixed VHD (Virtual PC) image: its \"conectix\" footer is in the last 512 bytes"
                    .into()
            }
            Foreign::Vhd { fixed: false } => {
                "a dynamic or differencing VHD (Virtual PC) image: \"conectix\" at offset 0".into()
            }
            Foreign::Qcow { version } if version >= 2 => {
                format!("a QCOW2 image (\"QFI\\xfb\" at offset 0, version {version})")
            }
            Foreign::Qcow { version } => {
                format!("a QCOW image (\"QFI\\xfb\" at offset 0, version {version})")
            }
            Foreign::Vmdk { what } => format!("a VMDK {what}"),
            Foreign::Vdi => "a VirtualBox VDI image (signature 0xbeda107f at offset 0x40)".into(),
            Foreign::RawGpt { at } => {
                format!("a raw disk with a GPT partition table (\"EFI PART\" at offset {at})")
            }
            Foreign::RawMbr => {
                "a raw disk with an MBR partition table (boot signature 0x55 0xAA at offset 510)"
                    .into()
            }
            Foreign::Empty => "an empty file".into(),
            Foreign::TooShort => {
                "too short to hold the 64 KiB file identifier, and it has no VHDX signature".into()
            }
        }
    }
}

/// The format of a file whose first bytes are `head` (at most [`HEAD`], zero-padded past
/// the end of the file) and whose last bytes are `tail` (the last [`TAIL`] or fewer), or
/// `None` when it may be a VHDX (its signature is there, or no other magic is).
pub fn detect(head: &[u8], tail: &[u8], file_size: u64) -> Option<Foreign> {
    let at = |off: usize, magic: &[u8]| head.get(off..off + magic.len()) == Some(magic);
    if at(0, super::identifier::SIGNATURE) {
        return None;
    }
    if file_size == 0 {
        return Some(Foreign::Empty);
    }
    let found = if at(0, b"conectix") {
        Some(Foreign::Vhd { fixed: false })
    } else if tail.len() == TAIL && tail.starts_with(b"conectix") {
        Some(Foreign::Vhd { fixed: true })
    } else if at(0, b"QFI\xfb") {
        let version = head
            .get(4..8)
            .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        Some(Foreign::Qcow { version })
    } else if at(0, b"KDMV") {
        Some(Foreign::Vmdk {
            what: "sparse extent (\"KDMV\" at offset 0)",
        })
    } else if at(0, b"COWD") {
        Some(Foreign::Vmdk {
            what: "ESX sparse extent (\"COWD\" at offset 0)",
        })
    } else if at(0, b"# Disk DescriptorFile") {
        Some(Foreign::Vmdk {
            what: "descriptor file (text \"# Disk DescriptorFile\"); the disk data is in the extent files it names",
        })
    } else if at(0, b"<<< ") && at(0x40, &0xbeda_107f_u32.to_le_bytes()) {
        Some(Foreign::Vdi)
    } else if at(512, b"EFI PART") {
        Some(Foreign::RawGpt { at: 512 })
    } else if at(4096, b"EFI PART") {
        Some(Foreign::RawGpt { at: 4096 })
    } else if at(510, &[0x55, 0xaa]) {
        Some(Foreign::RawMbr)
    } else {
        None
    };
    found.or((file_size < super::identifier::SLOT as u64).then_some(Foreign::TooShort))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(parts: &[(usize, &[u8])]) -> Vec<u8> {
        let mut h = vec![0u8; HEAD];
        for (off, b) in parts {
            h[*off..off + b.len()].copy_from_slice(b);
        }
        h
    }

    #[test]
    fn magics() {
        let big = 1 << 30;
        let none: &[u8] = &[];
        assert_eq!(detect(&head(&[(0, b"vhdxfile")]), none, 10), None);
        assert_eq!(detect(&head(&[]), none, 0), Some(Foreign::Empty));
        assert_eq!(
            detect(&head(&[]), none, big),
            None,
            "no magic: maybe a damaged VHDX"
        );
        assert_eq!(detect(&head(&[]), none, 100), Some(Foreign::TooShort));
        let mut tail = vec![0u8; TAIL];
        tail[..8].copy_from_slice(b"conectix");
        assert_eq!(
            detect(&head(&[]), &tail, big),
            Some(Foreign::Vhd { fixed: true })
        );
        assert_eq!(
            detect(&head(&[(0, b"QFI\xfb\0\0\0\x03")]), none, big),
            Some(Foreign::Qcow { version: 3 })
        );
        assert_eq!(
            detect(
                &head(&[(0, b"<<< x"), (0x40, &[0x7f, 0x10, 0xda, 0xbe])]),
                none,
                big
            ),
            Some(Foreign::Vdi)
        );
        // A protective MBR in front of a GPT: the GPT wins.
        assert_eq!(
            detect(
                &head(&[(510, &[0x55, 0xaa]), (512, b"EFI PART")]),
                none,
                big
            ),
            Some(Foreign::RawGpt { at: 512 })
        );
        assert_eq!(
            detect(&head(&[(510, &[0x55, 0xaa])]), none, big),
            Some(Foreign::RawMbr)
        );
        // The VHDX signature decides, whatever else the bytes hold.
        assert_eq!(
            detect(&head(&[(0, b"vhdxfile"), (510, &[0x55, 0xaa])]), &tail, big),
            None
        );
    }
}
