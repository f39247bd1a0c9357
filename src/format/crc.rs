//! CRC-32C (Castagnoli) as MS-VHDX uses it: computed over a span whose 4-byte checksum
//! field is taken as zero.

/// CRC-32C of `span` with the little-endian u32 at `field` treated as zero.
pub fn crc32c_with_zeroed_field(span: &[u8], field: usize) -> u32 {
    if field + 4 > span.len() {
        return crc32c::crc32c(span);
    }
    let crc = crc32c::crc32c(&span[..field]);
    let crc = crc32c::crc32c_append(crc, &[0u8; 4]);
    crc32c::crc32c_append(crc, &span[field + 4..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_values_from_catalogue() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c::crc32c(&[0u8; 4096]), 0x98F9_4189);
        assert_eq!(crc32c_with_zeroed_field(&[0xFFu8; 65536][..], 4), {
            let mut v = vec![0xFFu8; 65536];
            v[4..8].fill(0);
            crc32c::crc32c(&v)
        });
    }
}
