//! Real files for a synthetic bucket to serve (`--corpus DIR`): object `i` is file `i % len` of the
//! directory (sorted by name), so a bucket of any size holds a known mix of formats. The files are
//! read once, at start; each object's key ends in its file's name, so the service picks the same
//! extractor it would for the file itself (see `Bucket::write_key`).

use md5::{Digest, Md5};
use std::fmt::Write;
use std::path::Path;

#[derive(Debug)]
pub struct Corpus {
    files: Vec<File>,
}

#[derive(Debug)]
pub struct File {
    pub name: String,
    pub bytes: Vec<u8>,
    /// What S3 answers for a single-part upload: the quoted hex MD5 of the bytes.
    pub etag: String,
}

impl Corpus {
    /// The regular files of `dir` but those named in `exclude`, sorted by name. Refuses an empty
    /// selection, and names that a listing would have to escape.
    pub fn load(dir: &Path, exclude: &[String]) -> Result<Corpus, String> {
        let entries =
            std::fs::read_dir(dir).map_err(|e| format!("corpus {}: {e}", dir.display()))?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| format!("corpus {}: {e}", dir.display()))?;
            let path = entry.path();
            if !path.is_file() {
                continue;
            }
            let name = entry
                .file_name()
                .into_string()
                .map_err(|n| format!("corpus file {n:?}: not UTF-8"))?;
            if exclude.contains(&name) {
                continue;
            }
            // Listings write keys unescaped (examples/synthetic-s3/main.rs).
            if !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
            {
                return Err(format!(
                    "corpus file {name:?}: only letters, digits, '.', '_' and '-' are served"
                ));
            }
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            files.push(File {
                etag: quoted_md5(&bytes),
                name,
                bytes,
            });
        }
        if files.is_empty() {
            return Err(format!("corpus {}: no files", dir.display()));
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Corpus { files })
    }

    /// The file object `i` serves.
    pub fn file(&self, i: u64) -> &File {
        &self.files[(i % self.files.len() as u64) as usize]
    }
}

fn quoted_md5(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(34);
    out.push('"');
    for b in Md5::digest(bytes) {
        let _ = write!(out, "{b:02x}");
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_load_sorted_without_the_excluded_and_cycle() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.txt"), "bee").unwrap();
        std::fs::write(dir.path().join("a.pdf"), "%PDF").unwrap();
        std::fs::write(dir.path().join("expected.json"), "{}").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let c = Corpus::load(dir.path(), &["expected.json".into()]).unwrap();
        let names: Vec<&str> = (0..5).map(|i| c.file(i).name.as_str()).collect();
        assert_eq!(names, ["a.pdf", "b.txt", "a.pdf", "b.txt", "a.pdf"]);
        assert_eq!(c.file(1).bytes, b"bee");
        // `printf bee | md5sum`
        assert_eq!(c.file(1).etag, "\"9dfd70fdf15a3cb1ea00d7799ac6651b\"");
        std::fs::write(dir.path().join("a b&.txt"), "x").unwrap();
        let refused = Corpus::load(dir.path(), &["expected.json".into()]).unwrap_err();
        assert!(refused.contains("\"a b&.txt\""), "{refused}");
        let empty = tempfile::tempdir().unwrap();
        assert!(
            Corpus::load(empty.path(), &[])
                .unwrap_err()
                .contains("no files")
        );
        assert!(Corpus::load(&empty.path().join("none"), &[]).is_err());
    }
}
