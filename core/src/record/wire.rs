//! The record's wire format: LEB128 varints, and strings and options built
//! on them.

use super::RecordError;

/// Writes a record's fields.
pub(super) struct Writer(pub(super) Vec<u8>);

impl Writer {
    pub(super) fn u64(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }
    pub(super) fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }
    pub(super) fn opt_u64(&mut self, v: Option<u64>) {
        match v {
            None => self.u64(0),
            Some(v) => {
                self.u64(1);
                self.u64(v)
            }
        }
    }
    pub(super) fn opt_str(&mut self, v: Option<&str>) {
        match v {
            None => self.u64(0),
            Some(v) => {
                self.u64(1);
                self.str(v)
            }
        }
    }
}

/// Reads a record's fields; running out or a malformed value is `Corrupt`.
pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl Reader<'_> {
    pub(super) fn u64(&mut self) -> Result<u64, RecordError> {
        let mut v = 0u64;
        for i in 0..10 {
            let (&byte, rest) = self
                .0
                .split_first()
                .ok_or(RecordError::Corrupt("truncated"))?;
            self.0 = rest;
            let bits = u64::from(byte & 0x7f);
            if i == 9 && bits > 1 {
                return Err(RecordError::Corrupt("number too large"));
            }
            v |= bits << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(RecordError::Corrupt("number too large"))
    }
    pub(super) fn str(&mut self) -> Result<String, RecordError> {
        let len = self.u64()?;
        if len > self.0.len() as u64 {
            return Err(RecordError::Corrupt("truncated"));
        }
        let (s, rest) = self.0.split_at(len as usize);
        self.0 = rest;
        String::from_utf8(s.to_vec()).map_err(|_| RecordError::Corrupt("text is not UTF-8"))
    }
    pub(super) fn flag(&mut self) -> Result<bool, RecordError> {
        match self.u64()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(RecordError::Corrupt("bad option tag")),
        }
    }
    pub(super) fn opt_u64(&mut self) -> Result<Option<u64>, RecordError> {
        Ok(if self.flag()? {
            Some(self.u64()?)
        } else {
            None
        })
    }
    pub(super) fn opt_str(&mut self) -> Result<Option<String>, RecordError> {
        Ok(if self.flag()? {
            Some(self.str()?)
        } else {
            None
        })
    }
}
