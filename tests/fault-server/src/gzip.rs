//! Real gzip framing for `encoding=gzip`: the content in stored (uncompressed)
//! deflate blocks. A browser decodes it transparently, as it would a server
//! that compresses range responses, so the client sees `Content-Encoding:
//! gzip` on a body that decodes to the range's bytes.

const HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
/// Content bytes per stored block (the most a block can hold).
const BLOCK: u64 = 65_535;
const BLOCK_HEADER: u64 = 5;
const TRAILER: u64 = 8;

/// A gzip stream around `len` content bytes whose CRC-32 is `crc`.
#[derive(Clone, Copy, Debug)]
pub struct StoredGzip {
    pub len: u64,
    pub crc: u32,
}

/// Where a byte of the gzip stream comes from.
pub enum Part {
    /// Framing bytes (header, block header, trailer).
    Frame(Vec<u8>),
    /// `n` content bytes from content offset `at`.
    Content { at: u64, n: u64 },
}

impl StoredGzip {
    fn blocks(&self) -> u64 {
        self.len.div_ceil(BLOCK).max(1)
    }

    pub fn total(&self) -> u64 {
        HEADER.len() as u64 + self.blocks() * BLOCK_HEADER + self.len + TRAILER
    }

    /// The longest run of bytes starting at `pos` that come from one part.
    pub fn part_at(&self, pos: u64) -> Part {
        let head = HEADER.len() as u64;
        if pos < head {
            return Part::Frame(HEADER[pos as usize..].to_vec());
        }
        let blocks_end = self.total() - TRAILER;
        if pos >= blocks_end {
            let mut trailer = self.crc.to_le_bytes().to_vec();
            trailer.extend_from_slice(&(self.len as u32).to_le_bytes());
            return Part::Frame(trailer[(pos - blocks_end) as usize..].to_vec());
        }
        let block = (pos - head) / (BLOCK + BLOCK_HEADER);
        let within = (pos - head) % (BLOCK + BLOCK_HEADER);
        let first = block * BLOCK;
        let size = (self.len - first).min(BLOCK);
        if within < BLOCK_HEADER {
            let last = u8::from(block + 1 == self.blocks());
            let n = size as u16;
            let mut frame = vec![last];
            frame.extend_from_slice(&n.to_le_bytes());
            frame.extend_from_slice(&(!n).to_le_bytes());
            return Part::Frame(frame[within as usize..].to_vec());
        }
        let offset = within - BLOCK_HEADER;
        Part::Content {
            at: first + offset,
            n: size - offset,
        }
    }
}

/// CRC-32 (IEEE), as gzip's trailer needs it: the library's own.
pub use resumable_fetch_core::codec::crc32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(0, b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(crc32(0, b"1234"), b"56789"), 0xCBF4_3926);
    }

    /// Decodes a stored-block gzip stream, checking its framing.
    fn gunzip(stream: &[u8]) -> Vec<u8> {
        assert_eq!(&stream[..10], &HEADER);
        let mut at = 10;
        let mut out = Vec::new();
        loop {
            let last = stream[at] & 1 == 1;
            assert_eq!(stream[at] >> 1, 0, "stored block");
            let n = u16::from_le_bytes([stream[at + 1], stream[at + 2]]);
            let nn = u16::from_le_bytes([stream[at + 3], stream[at + 4]]);
            assert_eq!(n, !nn);
            out.extend_from_slice(&stream[at + 5..at + 5 + n as usize]);
            at += 5 + n as usize;
            if last {
                break;
            }
        }
        let crc = u32::from_le_bytes(stream[at..at + 4].try_into().unwrap());
        let size = u32::from_le_bytes(stream[at + 4..at + 8].try_into().unwrap());
        assert_eq!(at + 8, stream.len());
        assert_eq!((crc, size as usize), (crc32(0, &out), out.len()));
        out
    }

    #[test]
    fn frames_decode_to_the_content() {
        for len in [0u64, 1, 65_535, 65_536, 200_000] {
            let content: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let gz = StoredGzip {
                len,
                crc: crc32(0, &content),
            };
            let mut stream = Vec::new();
            while (stream.len() as u64) < gz.total() {
                match gz.part_at(stream.len() as u64) {
                    Part::Frame(bytes) => stream.extend_from_slice(&bytes),
                    Part::Content { at, n } => {
                        stream.extend_from_slice(&content[at as usize..(at + n) as usize])
                    }
                }
            }
            assert_eq!(stream.len() as u64, gz.total());
            assert_eq!(gunzip(&stream), content, "len {len}");
        }
    }
}
