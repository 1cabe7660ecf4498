//! The extra formats: `.npy` for numpy and CSV for spreadsheets and `pd.read_csv`. Both are
//! written atomically like the Parquet tables.

use crate::error::ExportError;
use arrow_array::{
    Array, FixedSizeListArray, Float32Array, Int64Array, ListArray, RecordBatch, StringArray,
    UInt32Array,
};
use arrow_schema::DataType;
use ndarray::ArrayView2;
use recpipe_core::fsutil::AtomicFile;
use std::io::{BufWriter, Write};
use std::path::Path;

/// A float32 `[n, k]` array in the NumPy format v1.0 (little-endian, C order).
pub fn write_npy(path: &Path, a: ArrayView2<'_, f32>) -> Result<(), ExportError> {
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}",
        a.nrows(),
        a.ncols()
    );
    // Magic (6) + version (2) + length (2) + header + '\n' is padded to a multiple of 64 so
    // the data is aligned for memory mapping, as numpy does.
    let unpadded = 10 + header.len() + 1;
    header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    header.push('\n');
    let mut file = AtomicFile::create(path)?;
    {
        let mut w = BufWriter::with_capacity(1 << 20, file.file());
        let io = |e| ExportError::io(path, e);
        w.write_all(b"\x93NUMPY\x01\x00").map_err(io)?;
        w.write_all(&(header.len() as u16).to_le_bytes())
            .map_err(io)?;
        w.write_all(header.as_bytes()).map_err(io)?;
        for row in a.rows() {
            for v in row {
                w.write_all(&v.to_le_bytes()).map_err(io)?;
            }
        }
        w.flush().map_err(io)?;
    }
    file.commit()?;
    Ok(())
}

/// Record batches as CSV with a header line. Lists of strings (genres) are joined with `|`;
/// a fixed-size float list (embedding) becomes columns `e0..e{k-1}`; nulls are empty fields.
pub fn write_csv(path: &Path, batches: &[RecordBatch]) -> Result<(), ExportError> {
    let Some(first) = batches.first() else {
        return Ok(());
    };
    let mut file = AtomicFile::create(path)?;
    {
        let io = |e| ExportError::io(path, e);
        let mut w = BufWriter::with_capacity(1 << 20, file.file());
        let mut names = Vec::new();
        for f in first.schema().fields() {
            match f.data_type() {
                DataType::FixedSizeList(_, k) => names.extend((0..*k).map(|i| format!("e{i}"))),
                _ => names.push(quote(f.name())),
            }
        }
        writeln!(w, "{}", names.join(",")).map_err(io)?;
        let mut line = String::new();
        for batch in batches {
            for r in 0..batch.num_rows() {
                line.clear();
                for (c, col) in batch.columns().iter().enumerate() {
                    if c > 0 {
                        line.push(',');
                    }
                    field(&mut line, col.as_ref(), r);
                }
                line.push('\n');
                w.write_all(line.as_bytes()).map_err(io)?;
            }
        }
        w.flush().map_err(io)?;
    }
    file.commit()?;
    Ok(())
}

fn field(line: &mut String, col: &dyn Array, r: usize) {
    use std::fmt::Write as _;
    if col.is_null(r) {
        return;
    }
    let any = col.as_any();
    if let Some(a) = any.downcast_ref::<UInt32Array>() {
        let _ = write!(line, "{}", a.value(r));
    } else if let Some(a) = any.downcast_ref::<Int64Array>() {
        let _ = write!(line, "{}", a.value(r));
    } else if let Some(a) = any.downcast_ref::<Float32Array>() {
        let _ = write!(line, "{}", a.value(r));
    } else if let Some(a) = any.downcast_ref::<StringArray>() {
        line.push_str(&quote(a.value(r)));
    } else if let Some(a) = any.downcast_ref::<ListArray>() {
        let values = a.value(r);
        let joined = values
            .as_any()
            .downcast_ref::<StringArray>()
            .map(|s| s.iter().flatten().collect::<Vec<_>>().join("|"))
            .unwrap_or_default();
        line.push_str(&quote(&joined));
    } else if let Some(a) = any.downcast_ref::<FixedSizeListArray>() {
        let values = a.value(r);
        if let Some(v) = values.as_any().downcast_ref::<Float32Array>() {
            for (i, x) in v.values().iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                let _ = write!(line, "{x}");
            }
        }
    }
}

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_aligned_and_data_follows() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.npy");
        let a = ndarray::array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]];
        write_npy(&p, a.view()).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
        assert!(header.contains("'shape': (2, 3)"), "{header}");
        assert!(header.ends_with('\n'));
        let data: Vec<f32> = bytes[10 + hlen..]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        assert_eq!(data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(quote("Toy Story (1995)"), "Toy Story (1995)");
        assert_eq!(
            quote("American President, The (1995)"),
            "\"American President, The (1995)\""
        );
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
