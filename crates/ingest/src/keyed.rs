//! Metadata rows (movies, users) by the original id of the ratings file. An id matches
//! when its text is the same; ids written as plain integers (`42`, `-7`, no sign, no
//! leading zero) are keyed by their value, so that integer ids of the ratings look their
//! row up without being formatted back into text, which at 600k items was most of the
//! metadata work.

use recpipe_core::ratings::Ids;
use std::collections::HashMap;

/// Rows by id: integer ids by value, any other id by its text.
#[derive(Debug)]
pub(crate) struct Keyed<T> {
    ints: HashMap<i64, T>,
    texts: HashMap<Box<str>, T>,
}

impl<T> Default for Keyed<T> {
    fn default() -> Self {
        Keyed {
            ints: HashMap::new(),
            texts: HashMap::new(),
        }
    }
}

/// The value of `s` when `s` is the way Rust writes that i64 (`i64::to_string`).
fn canonical_int(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    let canonical = match digits {
        [] => false,
        [b'0'] => digits.len() == b.len(),
        [first, ..] => *first != b'0',
    };
    if !canonical || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.parse().ok()
}

impl<T> Keyed<T> {
    /// Adds the row of `id` (a later row of the same id replaces it).
    pub fn insert(&mut self, id: &str, row: T) {
        match canonical_int(id) {
            Some(v) => self.ints.insert(v, row),
            None => self.texts.insert(id.into(), row),
        };
    }

    /// The row of the id written `id`.
    pub fn get_text(&self, id: &str) -> Option<&T> {
        match canonical_int(id) {
            Some(v) => self.ints.get(&v),
            None => self.texts.get(id),
        }
    }

    /// The row of `ids[i]` (as written by `Ids::display`).
    pub fn get(&self, ids: &Ids, i: usize) -> Option<&T> {
        match ids {
            Ids::Int(v) => self.ints.get(&v[i]),
            Ids::Str(v) => self.get_text(&v[i]),
        }
    }

    pub fn len(&self) -> usize {
        self.ints.len() + self.texts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An id is keyed by value exactly when `i64::to_string` writes it so; every other
    /// spelling (sign, leading zeros, spaces, overflow) stays text.
    #[test]
    fn integers_are_canonical_text_only() {
        for s in [
            "0",
            "7",
            "-7",
            "42",
            "9223372036854775807",
            "-9223372036854775808",
        ] {
            assert_eq!(canonical_int(s), Some(s.parse().unwrap()), "{s}");
            assert_eq!(canonical_int(s).unwrap().to_string(), s);
        }
        for s in [
            "",
            "-",
            "-0",
            "+5",
            "05",
            "00",
            " 5",
            "5 ",
            "5a",
            "1e3",
            "9223372036854775808",
            "٣",
        ] {
            assert_eq!(canonical_int(s), None, "{s:?}");
        }
    }

    /// Lookups by integer id, by text id and by text agree with a map keyed by the text the
    /// ids display as.
    #[test]
    fn lookups_match_the_displayed_text() {
        let mut k = Keyed::default();
        for (id, v) in [
            ("1", 'a'),
            ("007", 'b'),
            ("x", 'c'),
            ("-3", 'd'),
            ("1", 'e'),
        ] {
            k.insert(id, v);
        }
        assert_eq!(k.len(), 4);
        let ints = Ids::Int(vec![1, 7, -3, 2]);
        let got: Vec<_> = (0..4).map(|i| k.get(&ints, i).copied()).collect();
        assert_eq!(got, [Some('e'), None, Some('d'), None]);
        let texts = Ids::Str(["007", "7", "x", "1", "01"].map(String::from).to_vec());
        let got: Vec<_> = (0..5).map(|i| k.get(&texts, i).copied()).collect();
        assert_eq!(got, [Some('b'), None, Some('c'), Some('e'), None]);
        assert_eq!(k.get_text("-3"), Some(&'d'));
    }
}
