//! Ids that are not text — control characters, NUL, bytes the file's encoding does not
//! allow — are bad rows in every layout: `file:line:column` under on_error = "fail", a
//! row of rejects.csv under "skip", never a new user or item.

use recpipe_core::Progress;
use recpipe_ingest::{Config, Encoding, OnError, Summary, ingest};
use std::path::{Path, PathBuf};

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn fail(cfg: &Config) -> String {
    let out = tempfile::tempdir().unwrap();
    let e = ingest(cfg, out.path(), &Progress::hidden()).unwrap_err();
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0);
    e.to_string()
}

fn skip(cfg: &Config) -> (Summary, Vec<String>) {
    let out = tempfile::tempdir().unwrap();
    let cfg = Config {
        on_error: OnError::Skip,
        ..cfg.clone()
    };
    let s = ingest(&cfg, out.path(), &Progress::hidden()).unwrap();
    let rejects = std::fs::read_to_string(out.path().join("rejects.csv")).unwrap();
    (s, rejects.lines().skip(1).map(str::to_string).collect())
}

#[test]
fn generic_string_ids_with_control_bytes_or_bad_utf8_are_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "plays.csv",
        b"user,item,rating\nalice,book,4\nal\0ice,book,3\nbob,bo\x07ok,5\ncaf\xC3,book,2\nbob,x\x7F,1\nbob,book,4\n",
    );
    let cfg = Config::for_path(&file);
    let e = fail(&cfg);
    assert!(
        e.contains("plays.csv:3:3: user id `al\\0ice` holds the control character 0x00 (NUL)"),
        "{e}"
    );
    let (s, rejects) = skip(&cfg);
    assert_eq!((s.rows_kept, s.rejected, s.users, s.items), (2, 4, 2, 1));
    let want = [
        ",3,3,user id `al\\0ice` holds the control character 0x00 (NUL)",
        ",4,7,item id `bo\\u{7}ok` holds the control character 0x07",
        ",5,4,\"user id `caf\u{FFFD}` is not valid UTF-8 (byte 0xC3)",
        ",6,6,item id `x\\u{7f}` holds the control character 0x7F (DEL)",
    ];
    assert_eq!(rejects.len(), want.len(), "{rejects:?}");
    for (row, w) in rejects.iter().zip(want) {
        assert!(row.contains(w), "{row} lacks {w}");
    }
    // The same bytes read as Latin-1 are text (Ã), only the control bytes stay bad.
    let latin = Config {
        encoding: Encoding::Latin1,
        ..cfg
    };
    let (s, rejects) = skip(&latin);
    assert_eq!((s.rows_kept, s.rejected, s.users), (3, 3, 3), "{rejects:?}");
}

#[test]
fn movielens_csv_ids_with_nul_are_bad_rows_not_text_ids() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ml-latest-small");
    std::fs::create_dir(&data).unwrap();
    write(
        &data,
        "ratings.csv",
        b"userId,movieId,rating,timestamp\n1,10,4.0,1\n1\0,10,3.0,2\n2,1\x010,5.0,3\n",
    );
    write(
        &data,
        "movies.csv",
        b"movieId,title,genres\n10,A (1990),Drama\n",
    );
    let cfg = Config::for_path(&data);
    let e = fail(&cfg);
    assert!(
        e.contains("ratings.csv:3:2: user id `1\\0` holds the control character 0x00 (NUL)"),
        "{e}"
    );
    let (s, rejects) = skip(&cfg);
    assert_eq!((s.rows_kept, s.rejected, s.users, s.items), (1, 2, 1, 1));
    assert!(
        rejects[1].contains(",4,4,item id `1\\u{1}0`"),
        "{rejects:?}"
    );
}

#[test]
fn ml_1m_dat_and_ml_100k_ids_with_control_or_undefined_bytes_are_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let m1 = dir.path().join("ml-1m");
    std::fs::create_dir(&m1).unwrap();
    write(
        &m1,
        "ratings.dat",
        b"1::10::4::1\n\x002::10::3::2\n3::1\x81::5::3\n4::10::2::4\n",
    );
    write(&m1, "movies.dat", b"10::A (1990)::Drama\n");
    let cfg = Config::for_path(&m1);
    let e = fail(&cfg);
    assert!(e.contains("ratings.dat:2:1: user id `\\02`"), "{e}");
    let (s, rejects) = skip(&cfg);
    assert_eq!((s.rows_kept, s.rejected, s.users, s.items), (2, 2, 2, 1));
    assert!(
        rejects[1].contains(",3,5,\"item id `1\u{FFFD}` holds byte 0x81, which Latin-1"),
        "{rejects:?}"
    );

    let m100 = dir.path().join("ml-100k");
    std::fs::create_dir(&m100).unwrap();
    write(&m100, "u.data", b"1\t10\t4\t1\n2\t1\x000\t3\t2\n");
    let e = fail(&Config::for_path(&m100));
    assert!(
        e.contains("u.data:2:4: item id `1\\00` holds the control character 0x00 (NUL)"),
        "{e}"
    );
}
