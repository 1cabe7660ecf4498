//! The content-addressed artifact store under `.recpipe/`:
//!
//! ```text
//! .recpipe/cache/<kind>/<key>/   outputs + manifest.json (written last)
//! .recpipe/runs/<pipeline> -> ../views/<pipeline>/<generation>   (see view.rs)
//! .recpipe/views/<pipeline>/<generation>/<stage> -> ../../../cache/<kind>/<key>
//! .recpipe/views/<pipeline>/<generation>/run.json   one run: overrides, stage → kind + key
//! .recpipe/collected/<kind>/<key>   tombstone: gc removed this artifact (holds the date)
//! .recpipe/tmp/                  stages write here, then rename into cache/
//! .recpipe/locks/                one lock file per artifact, one per pipeline's view
//! .recpipe/statcache.json        size+mtime+inode → blake3 of external input files
//! ```
//!
//! Layout 2 (this one) replaced layout 1's `runs/<pipeline>/` folder of per-stage links; a
//! run finding that folder moves it aside and writes the view anew. Artifacts are unchanged.

use anyhow::{Context, Result};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

pub const MANIFEST: &str = "manifest.json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UpstreamRef {
    pub stage: String,
    pub kind: String,
    pub key: String,
    /// Where the artifact was read from (lets one-off commands find ancestors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ExternalRef {
    pub path: PathBuf,
    pub blake3: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ManifestInputs {
    pub upstream: Vec<UpstreamRef>,
    pub external: Vec<ExternalRef>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutputFile {
    pub path: String,
    pub bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    pub blake3: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub stage: String,
    pub kind: String,
    pub key: String,
    pub format_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    pub config: serde_json::Value,
    pub inputs: ManifestInputs,
    pub outputs: Vec<OutputFile>,
    /// UTC, RFC 3339.
    pub start: String,
    pub duration_s: f64,
    /// recpipe version that wrote the artifact.
    pub version: String,
    pub summary: serde_json::Value,
    #[serde(default)]
    pub lines: Vec<String>,
}

/// JSON with object keys sorted at every level, whatever serde_json's map type is.
pub fn canonical_json(v: &serde_json::Value) -> String {
    fn sort(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let sorted: BTreeMap<&String, serde_json::Value> =
                    m.iter().map(|(k, v)| (k, sort(v))).collect();
                let mut out = serde_json::Map::new();
                for (k, v) in sorted {
                    out.insert(k.clone(), v);
                }
                serde_json::Value::Object(out)
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    // A BTreeMap-backed or insertion-ordered map both serialize in the order built above.
    serde_json::to_string(&sort(v)).expect("JSON values always serialize")
}

/// The cache key of a stage run.
pub fn stage_key(
    kind: &str,
    format_version: u32,
    config: &serde_json::Value,
    upstream: &[UpstreamRef],
    external: &[ExternalRef],
) -> String {
    let material = serde_json::json!({
        "kind": kind,
        "format_version": format_version,
        "config": config,
        "upstream": upstream.iter().map(|u| &u.key).collect::<Vec<_>>(),
        "external": external
            .iter()
            .map(|e| serde_json::json!([e.path, e.blake3]))
            .collect::<Vec<_>>(),
    });
    let hash = blake3::hash(canonical_json(&material).as_bytes());
    hash.to_hex()[..32].to_string()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct StatEntry {
    size: u64,
    mtime_ns: i128,
    inode: u64,
    blake3: String,
}

pub struct Store {
    pub root: PathBuf,
    stat_cache: Mutex<BTreeMap<String, StatEntry>>,
    stat_dirty: Mutex<bool>,
    persist: bool,
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Store {
    pub fn open(root: PathBuf) -> Result<Store> {
        for sub in ["cache", "runs", "views", "collected", "tmp", "locks"] {
            let d = root.join(sub);
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create cache directory {}", d.display()))?;
        }
        let stat_cache = std::fs::read(root.join("statcache.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Ok(Store {
            root,
            stat_cache: Mutex::new(stat_cache),
            stat_dirty: Mutex::new(false),
            persist: true,
        })
    }

    /// Hashing without a `.recpipe` folder (one-off stage commands).
    pub fn in_memory() -> Store {
        Store {
            root: PathBuf::new(),
            stat_cache: Mutex::new(BTreeMap::new()),
            stat_dirty: Mutex::new(false),
            persist: false,
        }
    }

    pub fn artifact_dir(&self, kind: &str, key: &str) -> PathBuf {
        self.root.join("cache").join(kind).join(key)
    }

    pub fn run_link(&self, pipeline: &str, stage: &str) -> PathBuf {
        self.root.join("runs").join(pipeline).join(stage)
    }

    fn tombstone(&self, kind: &str, key: &str) -> PathBuf {
        self.root.join("collected").join(kind).join(key)
    }

    /// Record that gc removed an artifact (so `status` can say so); best effort.
    pub fn bury(&self, kind: &str, key: &str) {
        let path = self.tombstone(kind, key);
        let written = path
            .parent()
            .map(std::fs::create_dir_all)
            .unwrap_or(Ok(()))
            .and_then(|()| std::fs::write(&path, rfc3339(std::time::SystemTime::now())));
        if let Err(e) = written {
            tracing::debug!("cannot write {}: {e}", path.display());
        }
    }

    /// When gc removed this artifact, if it did (and it was not built again since).
    pub fn collected(&self, kind: &str, key: &str) -> Option<String> {
        std::fs::read_to_string(self.tombstone(kind, key)).ok()
    }

    pub fn tmp_root(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// A fresh directory to build an artifact in; its name starts with `<kind>-<key>-` so the
    /// next holder of that artifact's lock can tell a killed run's leftovers apart.
    pub fn new_tmp(&self, kind: &str, key: &str) -> Result<PathBuf> {
        let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = self
            .tmp_root()
            .join(format!("{kind}-{key}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(dir)
    }

    /// Exclusive per-artifact lock, held until the returned file is dropped. The kernel drops
    /// it when the process dies, so a killed run never blocks later ones.
    pub fn lock(&self, kind: &str, key: &str) -> Result<File> {
        let path = self.root.join("locks").join(format!("{kind}-{key}.lock"));
        let file =
            File::create(&path).with_context(|| format!("cannot create {}", path.display()))?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                tracing::info!("waiting for another recpipe process building {kind} {key}");
                fs4::FileExt::lock(&file)
                    .with_context(|| format!("cannot lock {}", path.display()))?;
            }
            Err(fs4::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        Ok(file)
    }

    /// Non-blocking variant for gc: Ok(None) when someone holds it, Err when the lock file
    /// cannot be opened (a read-only cache, say).
    pub fn try_lock(&self, kind: &str, key: &str) -> Result<Option<File>> {
        let path = self.root.join("locks").join(format!("{kind}-{key}.lock"));
        let file =
            File::create(&path).with_context(|| format!("cannot open {}", path.display()))?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => Ok(Some(file)),
            Err(fs4::TryLockError::WouldBlock) => Ok(None),
            Err(fs4::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }

    /// Remove tmp dirs a killed run left for this artifact; call with its lock held.
    pub fn clean_stale_tmp(&self, kind: &str, key: &str) {
        let prefix = format!("{kind}-{key}-");
        if let Ok(rd) = std::fs::read_dir(self.tmp_root()) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    tracing::debug!("removing leftover {}", e.path().display());
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }

    /// Content hash of a file or a folder (every file below it, by relative path).
    pub fn hash_external(&self, path: &Path) -> Result<ExternalRef> {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("cannot read input {}", path.display()))?;
        if meta.is_dir() {
            let mut files = Vec::new();
            walk_files(path, &mut files)
                .with_context(|| format!("cannot list {}", path.display()))?;
            files.sort();
            let hashes = files
                .par_iter()
                .map(|f| self.hash_file_cached(f).map(|(h, b)| (f, h, b)))
                .collect::<Result<Vec<_>>>()?;
            let mut hasher = blake3::Hasher::new();
            let mut bytes = 0;
            for (f, h, b) in hashes {
                let rel = f.strip_prefix(path).unwrap_or(f);
                hasher.update(rel.to_string_lossy().as_bytes());
                hasher.update(&[0]);
                hasher.update(h.as_bytes());
                bytes += b;
            }
            Ok(ExternalRef {
                path: path.to_path_buf(),
                blake3: hasher.finalize().to_hex().to_string(),
                bytes,
            })
        } else {
            let (h, bytes) = self.hash_file_cached(path)?;
            Ok(ExternalRef {
                path: path.to_path_buf(),
                blake3: h,
                bytes,
            })
        }
    }

    fn hash_file_cached(&self, path: &Path) -> Result<(String, u64)> {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("cannot read input {}", path.display()))?;
        let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let id = abs.to_string_lossy().into_owned();
        let stat = stat_of(&meta);
        if let Some(e) = self.stat_cache.lock().expect("not poisoned").get(&id)
            && (e.size, e.mtime_ns, e.inode) == stat
        {
            return Ok((e.blake3.clone(), e.size));
        }
        tracing::debug!("hashing {}", path.display());
        let h = recpipe_core::fsutil::hash_file(path)?.to_hex().to_string();
        self.stat_cache.lock().expect("not poisoned").insert(
            id,
            StatEntry {
                size: stat.0,
                mtime_ns: stat.1,
                inode: stat.2,
                blake3: h.clone(),
            },
        );
        *self.stat_dirty.lock().expect("not poisoned") = true;
        Ok((h, stat.0))
    }

    /// Merge our new stat entries into statcache.json (others may have added theirs).
    pub fn save_stat_cache(&self) {
        if !self.persist || !*self.stat_dirty.lock().expect("not poisoned") {
            return;
        }
        let path = self.root.join("statcache.json");
        let lock_path = self.root.join("locks").join("statcache.lock");
        let Ok(lock) = File::create(&lock_path) else {
            return;
        };
        if fs4::FileExt::lock(&lock).is_err() {
            return;
        }
        let mut merged: BTreeMap<String, StatEntry> = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        merged.extend(
            self.stat_cache
                .lock()
                .expect("not poisoned")
                .iter()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        // Forget files that are gone, so the cache does not grow forever.
        merged.retain(|k, _| Path::new(k).exists());
        if let Err(e) = recpipe_core::fsutil::write_json(&path, &merged) {
            tracing::debug!("cannot save stat cache: {e}");
        }
    }
}

fn stat_of(meta: &std::fs::Metadata) -> (u64, i128, u64) {
    let mtime_ns = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(meta);
    #[cfg(not(unix))]
    let inode = 0;
    (meta.len(), mtime_ns, inode)
}

pub fn walk_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let ft = e.file_type()?;
        if ft.is_dir() {
            walk_files(&e.path(), out)?;
        } else {
            out.push(e.path());
        }
    }
    Ok(())
}

/// Why an artifact directory cannot be trusted.
#[derive(Debug, Clone, PartialEq)]
pub enum Invalid {
    Missing,
    BadManifest(String),
    Mismatch(String),
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Invalid::Missing => write!(f, "not in the cache"),
            Invalid::BadManifest(m) => write!(f, "manifest unreadable ({m})"),
            Invalid::Mismatch(m) => write!(f, "{m}"),
        }
    }
}

pub fn read_manifest(dir: &Path) -> std::result::Result<Manifest, Invalid> {
    let path = dir.join(MANIFEST);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(if dir.exists() {
                Invalid::BadManifest("no manifest.json".into())
            } else {
                Invalid::Missing
            });
        }
        Err(e) => return Err(Invalid::BadManifest(e.to_string())),
    };
    serde_json::from_slice(&bytes).map_err(|e| Invalid::BadManifest(e.to_string()))
}

/// The manifest, if the directory holds a complete artifact whose files all match it.
pub fn verify(dir: &Path, key: Option<&str>) -> std::result::Result<Manifest, Invalid> {
    let m = read_manifest(dir)?;
    if let Some(key) = key
        && m.key != key
    {
        return Err(Invalid::BadManifest(format!(
            "manifest is for key {}, expected {key}",
            m.key
        )));
    }
    m.outputs
        .par_iter()
        .map(|o| {
            let p = dir.join(&o.path);
            let meta = std::fs::metadata(&p)
                .map_err(|_| Invalid::Mismatch(format!("output {} is missing", o.path)))?;
            if meta.len() != o.bytes {
                return Err(Invalid::Mismatch(format!(
                    "output {} has {} bytes, the manifest says {}",
                    o.path,
                    meta.len(),
                    o.bytes
                )));
            }
            let h = recpipe_core::fsutil::hash_file(&p)
                .map_err(|e| Invalid::Mismatch(e.to_string()))?;
            if h.to_hex().as_str() != o.blake3 {
                return Err(Invalid::Mismatch(format!(
                    "output {} does not match its recorded hash (modified after it was written)",
                    o.path
                )));
            }
            Ok(())
        })
        .collect::<std::result::Result<Vec<()>, Invalid>>()?;
    Ok(m)
}

/// Describe (and fsync) every file a stage wrote.
pub fn describe_outputs(dir: &Path) -> Result<Vec<OutputFile>> {
    let mut files = Vec::new();
    walk_files(dir, &mut files).with_context(|| format!("cannot list {}", dir.display()))?;
    files.sort();
    files
        .par_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != MANIFEST))
        .map(|p| {
            let rel = p
                .strip_prefix(dir)
                .unwrap_or(p)
                .to_string_lossy()
                .replace('\\', "/");
            File::open(p)
                .and_then(|f| f.sync_all())
                .with_context(|| format!("cannot sync {}", p.display()))?;
            let bytes = std::fs::metadata(p)?.len();
            let rows = if rel.ends_with(".parquet") {
                Some(recpipe_core::parquet_io::row_count(p)? as u64)
            } else {
                None
            };
            let blake3 = recpipe_core::fsutil::hash_file(p)?.to_hex().to_string();
            Ok(OutputFile {
                path: rel,
                bytes,
                rows,
                blake3,
            })
        })
        .collect()
}

pub fn fsync_dir(dir: &Path) {
    // Directory fsync makes the rename durable; not all platforms allow opening a directory.
    if let Ok(f) = File::open(dir) {
        let _ = f.sync_all();
    }
}

/// Move a finished temporary artifact into place, replacing whatever was there.
pub fn install(store: &Store, tmp: &Path, dest: &Path) -> Result<()> {
    let parent = dest.parent().expect("artifact dirs have a parent");
    std::fs::create_dir_all(parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    fsync_dir(tmp);
    if dest.exists() {
        let trash = store.tmp_root().join(format!(
            "trash-{}-{}",
            std::process::id(),
            TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::rename(dest, &trash)
            .with_context(|| format!("cannot move old artifact {} aside", dest.display()))?;
        let _ = std::fs::remove_dir_all(&trash);
    }
    std::fs::rename(tmp, dest)
        .with_context(|| format!("cannot move {} to {}", tmp.display(), dest.display()))?;
    fsync_dir(parent);
    if let (Some(kind), Some(key)) = (parent.file_name(), dest.file_name()) {
        let _ =
            std::fs::remove_file(store.tombstone(&kind.to_string_lossy(), &key.to_string_lossy()));
    }
    Ok(())
}

pub fn relative_to(target: &Path, base: &Path) -> PathBuf {
    let t: Vec<_> = target.components().collect();
    let b: Vec<_> = base.components().collect();
    let common = t.iter().zip(&b).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return target.to_path_buf();
    }
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c);
    }
    out
}

/// The `.recpipe` cache folder `path` lies in (after resolving `..` and links), if any: a
/// component named `.recpipe` holding `cache/`, `runs/` or `views/`.
pub fn store_containing(path: &Path) -> Option<PathBuf> {
    let abs = resolve(path);
    abs.ancestors()
        .filter(|a| a.file_name().is_some_and(|n| n == ".recpipe"))
        .find(|a| {
            ["cache", "runs", "views"]
                .iter()
                .any(|d| a.join(d).is_dir())
        })
        .map(Path::to_path_buf)
}

/// `path` made absolute: its longest existing prefix canonicalized (links resolved), the rest
/// (which cannot hold links, as it does not exist) normalized lexically.
fn resolve(path: &Path) -> PathBuf {
    let abs = std::env::current_dir()
        .map(|d| d.join(path))
        .unwrap_or_else(|_| path.to_path_buf());
    let parts: Vec<_> = abs.components().collect();
    for n in (1..=parts.len()).rev() {
        let prefix: PathBuf = parts[..n].iter().collect();
        if let Ok(mut base) = std::fs::canonicalize(&prefix) {
            for c in &parts[n..] {
                match c {
                    std::path::Component::ParentDir => {
                        base.pop();
                    }
                    std::path::Component::CurDir => {}
                    other => base.push(other),
                }
            }
            return base;
        }
    }
    abs
}

/// RFC 3339 UTC timestamp without pulling in a date crate.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a = serde_json::json!({"b": 1, "a": {"d": [1, {"z": 0, "y": 1}], "c": 2}});
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"c":2,"d":[1,{"y":1,"z":0}]},"b":1}"#
        );
    }

    #[test]
    fn key_depends_on_every_part() {
        let cfg = serde_json::json!({"seed": 42});
        let up = vec![UpstreamRef {
            stage: "ingest".into(),
            kind: "ingest".into(),
            key: "k1".into(),
            dir: None,
        }];
        let base = stage_key("split", 1, &cfg, &up, &[]);
        assert_eq!(base, stage_key("split", 1, &cfg, &up, &[]));
        assert_ne!(base, stage_key("split", 2, &cfg, &up, &[]));
        assert_ne!(base, stage_key("train", 1, &cfg, &up, &[]));
        assert_ne!(
            base,
            stage_key("split", 1, &serde_json::json!({"seed": 7}), &up, &[])
        );
        assert_ne!(base, stage_key("split", 1, &cfg, &[], &[]));
        let ext = ExternalRef {
            path: "r.csv".into(),
            blake3: "ab".into(),
            bytes: 1,
        };
        assert_ne!(base, stage_key("split", 1, &cfg, &up, &[ext]));
    }

    #[test]
    fn verify_detects_tampering_and_stat_cache_hashes_once() {
        let dir = tempfile::tempdir().unwrap();
        let art = dir.path().join("a");
        std::fs::create_dir_all(&art).unwrap();
        std::fs::write(art.join("x.txt"), "hello").unwrap();
        let outputs = describe_outputs(&art).unwrap();
        let m = Manifest {
            stage: "s".into(),
            kind: "k".into(),
            key: "key".into(),
            format_version: 1,
            pipeline: None,
            config: serde_json::json!({}),
            inputs: Default::default(),
            outputs,
            start: rfc3339(std::time::SystemTime::now()),
            duration_s: 0.0,
            version: "0".into(),
            summary: serde_json::Value::Null,
            lines: vec![],
        };
        recpipe_core::fsutil::write_json(art.join(MANIFEST), &m).unwrap();
        assert!(verify(&art, Some("key")).is_ok());
        assert!(matches!(
            verify(&art, Some("other")),
            Err(Invalid::BadManifest(_))
        ));
        std::fs::write(art.join("x.txt"), "hellO").unwrap();
        assert!(matches!(verify(&art, None), Err(Invalid::Mismatch(_))));
        std::fs::write(art.join("x.txt"), "hell").unwrap();
        assert!(matches!(verify(&art, None), Err(Invalid::Mismatch(_))));
        assert_eq!(
            verify(&dir.path().join("nope"), None).unwrap_err(),
            Invalid::Missing
        );

        let store = Store::open(dir.path().join(".recpipe")).unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("sub")).unwrap();
        std::fs::write(data.join("sub/r.csv"), "1,2,3").unwrap();
        let h1 = store.hash_external(&data).unwrap();
        store.save_stat_cache();
        let reopened = Store::open(dir.path().join(".recpipe")).unwrap();
        assert_eq!(reopened.stat_cache.lock().unwrap().len(), 1);
        assert_eq!(reopened.hash_external(&data).unwrap(), h1);
        std::fs::write(data.join("sub/r.csv"), "1,2,4").unwrap();
        assert_ne!(reopened.hash_external(&data).unwrap().blake3, h1.blake3);
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(t), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(std::time::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn paths_into_a_cache_are_found_through_dotdot_and_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let store = Store::open(root.join("p/.recpipe")).unwrap();
        std::fs::create_dir_all(root.join("p/out")).unwrap();
        let inside = |rel: &str| store_containing(&root.join(rel));
        assert_eq!(inside("p/.recpipe/runs/q/split"), Some(store.root.clone()));
        assert_eq!(
            inside("p/out/../.recpipe/cache/x"),
            Some(store.root.clone())
        );
        assert_eq!(inside("p/none/../.recpipe/x/y"), Some(store.root.clone()));
        assert_eq!(inside("p/out/new"), None);
        // A `.recpipe` that is not a cache (no cache/, runs/ or views/) is an ordinary folder.
        std::fs::create_dir_all(root.join("q/.recpipe")).unwrap();
        assert_eq!(inside("q/.recpipe/out"), None);
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(root.join("p/.recpipe/cache"), root.join("link")).unwrap();
            assert_eq!(inside("link/new"), Some(store.root.clone()));
        }
    }

    #[test]
    fn relative_links_climb_to_the_common_root() {
        assert_eq!(
            relative_to(
                Path::new("/r/.recpipe/cache/split/k"),
                Path::new("/r/.recpipe/runs/p")
            ),
            PathBuf::from("../../cache/split/k")
        );
    }
}
