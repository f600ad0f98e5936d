//! A minimal DER TLV walker, used only to find the exact bytes that a signature
//! covers (the `tbsCertificate` / `tbsCertList` element as received, never re-encoded).

/// One element: its tag, the whole TLV and its contents.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    pub whole: &'a [u8],
    pub contents: &'a [u8],
}

/// Reads one TLV from the front of `input`, returning it and the rest.
/// Only single-byte tags and definite lengths up to four bytes are accepted.
pub(crate) fn read(input: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let mut len = 0usize;
        for &b in &rest[..n] {
            len = (len << 8) | usize::from(b);
        }
        rest = &rest[n..];
        len
    };
    if rest.len() < len {
        return None;
    }
    let header = input.len() - rest.len();
    let whole = input.get(..header + len)?;
    let contents = rest.get(..len)?;
    Some((
        Tlv {
            tag,
            whole,
            contents,
        },
        &input[header + len..],
    ))
}

/// The first element inside the outer SEQUENCE of a signed structure (the TBS part).
pub(crate) fn signed_part(der: &[u8]) -> Option<&[u8]> {
    let (outer, _) = read(der)?;
    if outer.tag != 0x30 {
        return None;
    }
    let (tbs, _) = read(outer.contents)?;
    (tbs.tag == 0x30).then_some(tbs.whole)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_short_and_long_lengths_and_refuses_truncation() {
        let (t, rest) = read(&[0x02, 0x01, 0x05, 0xff]).unwrap();
        assert_eq!((t.tag, t.contents, rest), (0x02, &[0x05][..], &[0xff][..]));
        let mut long = vec![0x04, 0x81, 0x80];
        long.extend([0u8; 0x80]);
        assert_eq!(read(&long).unwrap().0.contents.len(), 0x80);
        assert!(read(&long[..100]).is_none());
        assert!(read(&[0x30, 0x85, 1, 1, 1, 1, 1]).is_none());
        assert!(read(&[0x1f, 0x01, 0x00]).is_none());
        assert!(read(&[]).is_none());
        assert!(signed_part(&[0x30, 0x02, 0x02, 0x00]).is_none());
    }
}
