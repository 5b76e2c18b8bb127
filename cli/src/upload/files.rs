//! Which local files an upload sends, and the name each gets on the server: paths as given,
//! directories walked recursively in name order.

use std::path::{Path, PathBuf};

use filestore_contract::domain::FileName;

use crate::error::{Error, Result};

/// One local file to send: where it is, the folder it goes in (names below the upload's
/// destination folder, outermost first) and its name there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalFile {
    pub path: PathBuf,
    pub folder: Vec<FileName>,
    pub name: FileName,
}

/// What an upload makes: the folders of the directories given (parents before children,
/// empty ones too), and the files.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UploadPlan {
    pub folders: Vec<Vec<FileName>>,
    pub files: Vec<LocalFile>,
}

/// The files under `paths` (directories walked recursively, in name order), each with the
/// folder it goes in: a directory `photos` becomes a folder `photos` holding its tree.
///
/// # Errors
/// A path that cannot be read, `--name` with more than one file, nothing to upload, or a
/// file or directory whose name the server would refuse.
pub fn plan_files(paths: &[PathBuf], name: Option<&FileName>) -> Result<UploadPlan> {
    let mut plan = UploadPlan::default();
    for path in paths {
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        if meta.is_dir() {
            let root = std::fs::canonicalize(path)
                .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
            let folder = match root.file_name() {
                Some(n) => vec![server_name(path, &n.to_string_lossy())?],
                None => Vec::new(),
            };
            if !folder.is_empty() {
                plan.folders.push(folder.clone());
            }
            walk(path, &folder, &mut plan)?;
        } else {
            let base = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| Error::Usage(format!("{} has no file name", path.display())))?;
            let name = match name {
                Some(name) => name.clone(),
                None => server_name(path, &base)?,
            };
            plan.files.push(LocalFile {
                path: path.clone(),
                folder: Vec::new(),
                name,
            });
        }
    }
    match (name, plan.files.len()) {
        (_, 0) => Err(Error::Usage("no files to upload".to_string())),
        (Some(_), n) if n > 1 || !plan.folders.is_empty() => Err(Error::Usage(format!(
            "--name names one file, but the paths hold {n} files"
        ))),
        _ => Ok(plan),
    }
}

/// A local name as the server will have it.
fn server_name(path: &Path, name: &str) -> Result<FileName> {
    FileName::parse(name).map_err(|why| {
        Error::Usage(format!(
            "{} cannot be named {name:?} on the server ({why}); rename it, or upload a file alone with --name",
            path.display()
        ))
    })
}

fn walk(dir: &Path, folder: &[FileName], plan: &mut UploadPlan) -> Result<()> {
    let read_err = |e| Error::io(format!("reading {}", dir.display()), e);
    let mut entries = std::fs::read_dir(dir)
        .map_err(read_err)?
        .collect::<std::io::Result<Vec<_>>>()
        .map_err(read_err)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = server_name(&path, &entry.file_name().to_string_lossy())?;
        let kind = entry.file_type().map_err(read_err)?;
        if kind.is_dir() {
            let mut below = folder.to_vec();
            below.push(name);
            plan.folders.push(below.clone());
            walk(&path, &below, plan)?;
        } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
            // Symlinks to files are uploaded; symlinks to directories are not followed,
            // so a link cycle cannot loop.
            plan.files.push(LocalFile {
                path,
                folder: folder.to_vec(),
                name,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(folder: &[FileName]) -> String {
        folder
            .iter()
            .map(FileName::as_str)
            .collect::<Vec<_>>()
            .join("/")
    }

    #[test]
    fn directories_become_folders_walked_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("photos");
        std::fs::create_dir_all(root.join("2024/june")).unwrap();
        std::fs::write(root.join("b.jpg"), b"b").unwrap();
        std::fs::write(root.join("a.jpg"), b"a").unwrap();
        std::fs::write(root.join("2024/june/c.jpg"), b"c").unwrap();
        std::fs::create_dir_all(root.join("empty")).unwrap();
        let single = dir.path().join("single.txt");
        std::fs::write(&single, b"s").unwrap();

        let plan = plan_files(&[root.clone(), single.clone()], None).unwrap();
        let folders: Vec<String> = plan.folders.iter().map(|f| names(f)).collect();
        assert_eq!(
            folders,
            ["photos", "photos/2024", "photos/2024/june", "photos/empty"]
        );
        let files: Vec<String> = plan
            .files
            .iter()
            .map(|f| format!("{}|{}", names(&f.folder), f.name))
            .collect();
        assert_eq!(
            files,
            [
                "photos/2024/june|c.jpg",
                "photos|a.jpg",
                "photos|b.jpg",
                "|single.txt"
            ]
        );
        assert_eq!(plan.files[0].path, root.join("2024/june/c.jpg"));

        let other = FileName::parse("other.txt").unwrap();
        let renamed = plan_files(std::slice::from_ref(&single), Some(&other)).unwrap();
        assert_eq!(renamed.files[0].name, other);
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
    /// any request, and `--name` is the way out for a single file.
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
