//! A bounds-checked cursor over little-endian binary structures (quotes, reports).
//! Every read either returns the bytes asked for or a [`DcapError::Truncated`].

use super::error::DcapError;

/// A cursor over a byte slice.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts at the beginning of `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// The offset of the next byte.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// The bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    /// Reads `n` bytes.
    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DcapError> {
        let have = self.rest().len();
        let truncated = DcapError::Truncated {
            what,
            offset: self.pos,
            need: n,
            have,
        };
        let end = self.pos.checked_add(n).ok_or(truncated.clone())?;
        let out = self.buf.get(self.pos..end).ok_or(truncated)?;
        self.pos = end;
        Ok(out)
    }

    /// Reads exactly `N` bytes into an array.
    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], DcapError> {
        let bytes = self.take(N, what)?;
        <[u8; N]>::try_from(bytes).map_err(|_| DcapError::Truncated {
            what,
            offset: self.pos,
            need: N,
            have: bytes.len(),
        })
    }

    /// Reads a little-endian `u16`.
    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, DcapError> {
        self.array::<2>(what).map(u16::from_le_bytes)
    }

    /// Reads a little-endian `u32`.
    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, DcapError> {
        self.array::<4>(what).map(u32::from_le_bytes)
    }

    /// Reads a `u32` length followed by that many bytes.
    pub(crate) fn sized_u32(&mut self, what: &'static str) -> Result<&'a [u8], DcapError> {
        let len = self.u32(what)?;
        let len = usize::try_from(len).map_err(|_| DcapError::Truncated {
            what,
            offset: self.pos,
            need: usize::MAX,
            have: self.rest().len(),
        })?;
        self.take(len, what)
    }

    /// Reads a `u16` length followed by that many bytes.
    pub(crate) fn sized_u16(&mut self, what: &'static str) -> Result<&'a [u8], DcapError> {
        let len = self.u16(what)?;
        self.take(usize::from(len), what)
    }

    /// Fails unless every byte was read.
    pub(crate) fn finish(&self, what: &'static str) -> Result<(), DcapError> {
        if self.rest().is_empty() {
            Ok(())
        } else {
            Err(DcapError::LengthMismatch {
                what,
                declared: self.buf.len(),
                used: self.pos,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_little_endian_and_refuses_overruns() {
        let mut r = Reader::new(&[1, 0, 2, 0, 0, 0, 9]);
        assert_eq!(r.u16("a").unwrap(), 1);
        assert_eq!(r.u32("b").unwrap(), 2);
        assert!(r.finish("x").is_err());
        assert!(matches!(
            r.take(2, "c"),
            Err(DcapError::Truncated {
                need: 2,
                have: 1,
                ..
            })
        ));
        assert_eq!(r.array::<1>("d").unwrap(), [9]);
        r.finish("x").unwrap();
        let mut huge = Reader::new(&[0xff, 0xff, 0xff, 0xff]);
        assert!(huge.sized_u32("e").is_err());
    }
}
