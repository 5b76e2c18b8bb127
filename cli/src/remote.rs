//! Where things are on the server: a command-line argument starting with `/` is a path,
//! resolved by `GET /v1/paths`; anything else is an id, as it always was. Commands resolve
//! their arguments to ids here first and then act on ids, so the transfers (the download
//! byte loop, the upload parts) never see a path.
//!
//! Also here: `mkdir -p`, tolerant of a concurrent creator (a `409 name_taken` from a
//! create is answered by resolving the name that won).

use filestore_contract::api::{CreateFolderRequest, Entry, FileView, FolderView};
use filestore_contract::domain::{FileName, FolderId};

use crate::api::{Api, is_conflict, is_not_found};
use crate::error::{Error, Result};

/// What an argument names: a path (`/docs/a.pdf`, `/`) or an id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    Path(&'a str),
    Id(&'a str),
}

impl<'a> Target<'a> {
    pub fn of(arg: &'a str) -> Self {
        if arg.starts_with('/') {
            Self::Path(arg)
        } else {
            Self::Id(arg)
        }
    }
}

/// A path in the one form the server and the messages use: `/` alone, or `/a/b` with no
/// empty segment and no trailing `/`.
pub fn normalize(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    format!("/{}", segments.join("/"))
}

/// The folder part and the last name of a normalized path (`None` for `/`).
pub fn split_last(path: &str) -> Option<(String, &str)> {
    let path = path.strip_suffix('/').unwrap_or(path);
    let (parent, name) = path.rsplit_once('/')?;
    (!name.is_empty()).then(|| (normalize(parent), name))
}

/// `path` below `folder` (both normalized).
pub fn join(folder: &str, name: &str) -> String {
    if folder == "/" {
        format!("/{name}")
    } else {
        format!("{folder}/{name}")
    }
}

/// The file or folder at `path`.
///
/// # Errors
/// [`Error::NoSuchPath`] when nothing is there; the API's refusal of a malformed path.
pub async fn at_path(api: &Api, path: &str) -> Result<Entry> {
    let path = normalize(path);
    match api.resolve_path(&path).await {
        Err(e) if is_not_found(&e) => Err(Error::NoSuchPath(path)),
        other => other,
    }
}

/// The file or folder an argument names. An id is looked up as a file, then as a folder.
///
/// # Errors
/// Nothing there (a 404, or [`Error::NoSuchPath`]).
pub async fn entry(api: &Api, arg: &str) -> Result<Entry> {
    match Target::of(arg) {
        Target::Path(path) => at_path(api, path).await,
        Target::Id(id) => match api.file(id).await {
            Ok(file) => Ok(Entry::File(file.known)),
            Err(e) if is_not_found(&e) => match api.folder(id).await {
                Ok(folder) => Ok(Entry::Folder(folder.folder)),
                Err(folder_err) if is_not_found(&folder_err) => Err(e),
                Err(folder_err) => Err(folder_err),
            },
            Err(e) => Err(e),
        },
    }
}

/// The id of the file an argument names (an id is passed through as given: the route that
/// uses it answers for it).
///
/// # Errors
/// A path with nothing there, or a folder there.
pub async fn file_id(api: &Api, arg: &str) -> Result<String> {
    match Target::of(arg) {
        Target::Id(id) => Ok(id.to_string()),
        Target::Path(path) => match at_path(api, path).await? {
            Entry::File(file) => Ok(file.file_id.to_string()),
            Entry::Folder(_) => Err(Error::Failed(format!(
                "{} is a folder, not a file",
                normalize(path)
            ))),
        },
    }
}

/// The folder an argument names.
///
/// # Errors
/// A path with nothing there or a file there; an id of no folder of mine.
pub async fn folder(api: &Api, arg: &str) -> Result<FolderView> {
    match Target::of(arg) {
        Target::Id(id) => Ok(api.folder(id).await?.folder),
        Target::Path(path) => match at_path(api, path).await? {
            Entry::Folder(folder) => Ok(folder),
            Entry::File(_) => Err(not_a_folder(&normalize(path))),
        },
    }
}

fn not_a_folder(path: &str) -> Error {
    Error::Failed(format!("{path} is a file, not a folder"))
}

/// Creates `name` in `parent` (whose path is `parent_path`), or finds the folder of that
/// name already there, made earlier or at this very moment by another client.
///
/// # Errors
/// A file of that name is there; the parent is gone; any other refusal.
pub async fn ensure_child(
    api: &Api,
    parent: &FolderId,
    parent_path: &str,
    name: &FileName,
) -> Result<(FolderView, bool)> {
    let body = CreateFolderRequest {
        name: name.clone(),
        parent_id: Some(parent.clone()),
    };
    match api.create_folder(&body).await {
        Ok(folder) => Ok((folder, true)),
        Err(e) if is_conflict(&e, "name_taken") => {
            let path = join(parent_path, name.as_str());
            match at_path(api, &path).await? {
                Entry::Folder(folder) => Ok((folder, false)),
                Entry::File(_) => Err(not_a_folder(&path)),
            }
        }
        Err(e) => Err(e),
    }
}

/// `mkdir -p`: the folder at `path`, creating it and any missing folder above it.
///
/// # Errors
/// A file where a folder is needed; a name the server refuses.
pub async fn ensure_path(api: &Api, path: &str) -> Result<FolderView> {
    let path = normalize(path);
    // Most often the folder exists (a re-run): one read, no create.
    match at_path(api, &path).await {
        Ok(Entry::Folder(folder)) => return Ok(folder),
        Ok(Entry::File(_)) => return Err(not_a_folder(&path)),
        Err(Error::NoSuchPath(_)) => {}
        Err(e) => return Err(e),
    }
    let mut folder = api.folder(FolderId::ROOT).await?.folder;
    let mut here = "/".to_string();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        let name = parse_name(segment)?;
        folder = ensure_child(api, &folder.folder_id, &here, &name).await?.0;
        here = join(&here, name.as_str());
    }
    Ok(folder)
}

/// A name typed on the command line, as the contract allows it.
///
/// # Errors
/// [`Error::Usage`] naming the rule it breaks.
pub fn parse_name(segment: &str) -> Result<FileName> {
    FileName::parse(segment).map_err(|why| Error::Usage(format!("{segment:?}: {why}")))
}

/// The id and name of an entry, for messages.
pub fn describe(entry: &Entry) -> (&str, &str) {
    match entry {
        Entry::File(FileView { file_id, name, .. }) => (file_id.as_str(), name.as_str()),
        Entry::Folder(FolderView {
            folder_id, name, ..
        }) => (folder_id.as_str(), name.as_str()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_starting_with_a_slash_are_paths() {
        assert_eq!(Target::of("/docs/a.pdf"), Target::Path("/docs/a.pdf"));
        assert_eq!(Target::of("/"), Target::Path("/"));
        assert_eq!(
            Target::of("0190f0e0-0000-7000-8000-000000000000"),
            Target::Id("0190f0e0-0000-7000-8000-000000000000")
        );
        assert_eq!(Target::of("docs/a.pdf"), Target::Id("docs/a.pdf"));
    }

    #[test]
    fn paths_are_normalized_and_split() {
        assert_eq!(normalize("/"), "/");
        assert_eq!(normalize("//docs//old/"), "/docs/old");
        assert_eq!(normalize("/my docs/é.txt"), "/my docs/é.txt");
        assert_eq!(split_last("/docs/a.pdf"), Some(("/docs".into(), "a.pdf")));
        assert_eq!(split_last("/a.pdf"), Some(("/".into(), "a.pdf")));
        assert_eq!(split_last("/docs/"), Some(("/".into(), "docs")));
        assert_eq!(split_last("/"), None);
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
    }
}
