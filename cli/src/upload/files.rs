//! Which local files an upload sends, and the name each gets on the server: paths as given,
//! directories walked recursively in name order.

use std::path::{Path, PathBuf};

use filestore_contract::domain::FileName;

use crate::error::{Error, Result};

/// Directory uploads name files by their relative path with `/` written as this, because
/// the server's names are flat (no `/`).
pub const PATH_SEPARATOR: &str = "__";

/// The files under `paths` (directories walked recursively, in name order) with the name
/// each gets on the server.
///
/// # Errors
/// A path that cannot be read, `--name` with more than one file, nothing to upload, or a
/// file whose name the server would refuse.
pub fn plan_files(paths: &[PathBuf], name: Option<&FileName>) -> Result<Vec<(PathBuf, FileName)>> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if meta.is_dir() {
            let root = std::fs::canonicalize(path)
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            let prefix: Vec<String> = root
                .file_name()
                .map(|n| vec![n.to_string_lossy().into_owned()])
                .unwrap_or_default();
            walk(path, &prefix, &mut files)?;
        } else {
            let base = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| Error::Usage(format!("{} has no file name", path.display())))?;
            files.push((path.clone(), base));
        }
    }
    match (name, files.len()) {
        (_, 0) => Err(Error::Usage("no files to upload".to_string())),
        (Some(name), 1) => Ok(vec![(files.remove(0).0, name.clone())]),
        (Some(_), n) => Err(Error::Usage(format!(
            "--name names one file, but the paths hold {n} files"
        ))),
        (None, _) => files
            .into_iter()
            .map(|(path, name)| match FileName::parse(&name) {
                Ok(name) => Ok((path, name)),
                Err(why) => Err(Error::Usage(format!(
                    "{} cannot be named {name:?} on the server ({why}); upload it alone with --name",
                    path.display()
                ))),
            })
            .collect(),
    }
}

fn walk(dir: &Path, prefix: &[String], files: &mut Vec<(PathBuf, String)>) -> Result<()> {
    let read_err = |e| Error::io(format!("reading {}", dir.display()), e);
    let mut entries = std::fs::read_dir(dir)
        .map_err(read_err)?
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(read_err)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let mut name = prefix.to_vec();
        name.push(entry.file_name().to_string_lossy().into_owned());
        let kind = entry.file_type().map_err(read_err)?;
        if kind.is_dir() {
            walk(&path, &name, files)?;
        } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
            // Symlinks to files are uploaded; symlinks to directories are not followed,
            // so a link cycle cannot loop.
            files.push((path, name.join(PATH_SEPARATOR)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_are_walked_in_order_and_named_by_relative_path() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("photos");
        std::fs::create_dir_all(root.join("2024/june")).unwrap();
        std::fs::write(root.join("b.jpg"), b"b").unwrap();
        std::fs::write(root.join("a.jpg"), b"a").unwrap();
        std::fs::write(root.join("2024/june/c.jpg"), b"c").unwrap();
        std::fs::create_dir_all(root.join("empty")).unwrap();
        let single = dir.path().join("single.txt");
        std::fs::write(&single, b"s").unwrap();

        let files = plan_files(&[root.clone(), single.clone()], None).unwrap();
        let names: Vec<&str> = files.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "photos__2024__june__c.jpg",
                "photos__a.jpg",
                "photos__b.jpg",
                "single.txt"
            ]
        );
        assert_eq!(files[0].0, root.join("2024/june/c.jpg"));

        let other = FileName::parse("other.txt").unwrap();
        let renamed = plan_files(std::slice::from_ref(&single), Some(&other)).unwrap();
        assert_eq!(renamed, [(single, other)]);
        let x = FileName::parse("x").unwrap();
        assert!(matches!(
            plan_files(std::slice::from_ref(&root), Some(&x)),
            Err(Error::Usage(_))
        ));
        assert!(matches!(
            plan_files(&[root.join("empty")], None),
            Err(Error::Usage(_))
        ));
        assert!(matches!(
            plan_files(&[dir.path().join("missing")], None),
            Err(Error::Io { .. })
        ));
    }

    /// A local name the server would refuse is the command line's mistake, found before
    /// any request, and `--name` is the way out.
    #[test]
    fn names_the_server_would_refuse_are_refused_here() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bell\u{7}.txt");
        std::fs::write(&bad, b"b").unwrap();
        match plan_files(std::slice::from_ref(&bad), None) {
            Err(Error::Usage(why)) => assert!(why.contains("--name"), "{why}"),
            other => panic!("{other:?}"),
        }
        let fine = FileName::parse("bell.txt").unwrap();
        assert!(plan_files(&[bad], Some(&fine)).is_ok());
    }
}
