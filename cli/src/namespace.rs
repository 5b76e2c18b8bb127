//! The commands on the namespace: `ls`, `info`, `mkdir`, `mv`, `rm` (to the trash),
//! `trash`, `restore` and `purge`. Each resolves its arguments to ids through [`remote`]
//! first, then makes one change through the API, so what the server refuses (`name_taken`,
//! `cycle`, `parent_gone`, `root_folder`) comes back as its own one-line error.

use filestore_contract::api::{
    Entry, FileView, FolderResponse, FolderView, MoveRequest, RestoreRequest,
};
use filestore_contract::domain::{EntryType, FileName};
use serde_json::json;

use crate::api::{Api, is_not_found};
use crate::error::{Error, Result};
use crate::output::{Output, human_bytes, lines};
use crate::remote::{self, Target};

/// A folder's path, from its breadcrumbs.
pub fn folder_path(folder: &FolderResponse) -> String {
    if folder.folder.parent_id.is_none() {
        return "/".to_string();
    }
    let mut path = String::new();
    for ancestor in folder.ancestors.iter().filter(|a| !a.folder_id.is_root()) {
        path.push('/');
        path.push_str(&ancestor.name);
    }
    path.push('/');
    path.push_str(&folder.folder.name);
    path
}

/// A file as `ls` shows it.
pub fn file_line(f: &FileView) -> String {
    format!(
        "{}  {:>10}  {}  {}{}",
        f.file_id,
        human_bytes(f.size),
        f.created_at,
        f.name,
        if f.verified { "" } else { "  (unverified)" }
    )
}

fn folder_line(f: &FolderView) -> String {
    format!(
        "{}  {:>10}  {}  {}/",
        f.folder_id, "folder", f.created_at, f.name
    )
}

fn entry_line(entry: &Entry) -> String {
    match entry {
        Entry::File(f) => file_line(f),
        Entry::Folder(f) => folder_line(f),
    }
}

/// `ls [TARGET]`: a folder's entries (folders first, then files, by name; all pages), or a
/// single file.
pub async fn ls(api: &Api, target: &str, out: &Output) -> Result<()> {
    let (folder, entries) = match remote::entry(api, target).await? {
        Entry::Folder(folder) => {
            let entries = api.children(folder.folder_id.as_str()).await?;
            (Some(folder), entries)
        }
        file @ Entry::File(_) => (None, vec![file]),
    };
    out.result(&json!({ "folder": folder, "entries": entries }), || {
        lines(&entries, "empty folder", entry_line)
    });
    Ok(())
}

/// `info TARGET`: one file or folder, a folder with its path.
pub async fn info(api: &Api, target: &str, out: &Output) -> Result<()> {
    match remote::entry(api, target).await? {
        Entry::File(file) => {
            let value = Entry::File(file.clone());
            out.result(&value, || {
                format!(
                    "file {}\nname     {}\nsize     {} ({} bytes)\nsha256   {}{}\nfolder   {}\ncreated  {}\ntier     {}",
                    file.file_id,
                    file.name,
                    human_bytes(file.size),
                    file.size,
                    file.sha256.as_deref().unwrap_or("-"),
                    if file.verified { "" } else { " (unverified)" },
                    file.parent_id,
                    file.created_at,
                    file.tier,
                )
            });
        }
        Entry::Folder(folder) => {
            let full = api.folder(folder.folder_id.as_str()).await?;
            let path = folder_path(&full);
            out.result(&json!({ "type": "folder", "folder": full.folder, "ancestors": full.ancestors, "path": path }), || {
                format!(
                    "folder {}\npath     {path}\ncreated  {}",
                    full.folder.folder_id, full.folder.created_at
                )
            });
        }
    }
    Ok(())
}

/// `mkdir [-p] PATH`.
pub async fn mkdir(api: &Api, path: &str, parents: bool, out: &Output) -> Result<()> {
    if !path.starts_with('/') {
        return Err(Error::Usage(format!(
            "{path:?} is not a path: folders are made at a path from the root, such as /docs"
        )));
    }
    let path = remote::normalize(path);
    let folder = if parents {
        remote::ensure_path(api, &path).await?
    } else {
        let (parent, name) = remote::split_last(&path)
            .ok_or_else(|| Error::Usage("the root folder / is always there".to_string()))?;
        let name = remote::parse_name(name)?;
        let parent = remote::folder(api, &parent).await?;
        let body = filestore_contract::api::CreateFolderRequest {
            name,
            parent_id: Some(parent.folder_id),
        };
        api.create_folder(&body).await?
    };
    out.result(&folder, || {
        format!("{path}/ is folder {}", folder.folder_id)
    });
    Ok(())
}

/// `mv SOURCE DESTINATION`: a rename, a move, or both, in one request.
pub async fn mv(api: &Api, source: &str, destination: &str, out: &Output) -> Result<()> {
    let entry = remote::entry(api, source).await?;
    let (body, shown) = match Target::of(destination) {
        // Not a path: a new name in the same folder (ids never appear as destinations).
        Target::Id(name) => (
            MoveRequest {
                name: Some(remote::parse_name(name)?),
                parent_id: None,
            },
            format!("{name:?}"),
        ),
        Target::Path(path) => {
            let into = if path.ends_with('/') {
                Some(remote::folder(api, path).await?)
            } else {
                match remote::at_path(api, path).await {
                    Ok(Entry::Folder(folder)) => Some(folder),
                    // A file there: the move names it, and the server answers name_taken.
                    Ok(Entry::File(_)) | Err(Error::NoSuchPath(_)) => None,
                    Err(e) => return Err(e),
                }
            };
            let path = remote::normalize(path);
            match into {
                Some(folder) => {
                    let shown = remote::join(&path, remote::describe(&entry).1);
                    (
                        MoveRequest {
                            name: None,
                            parent_id: Some(folder.folder_id),
                        },
                        shown,
                    )
                }
                None => {
                    let (parent, name) = remote::split_last(&path)
                        .ok_or_else(|| Error::Usage("cannot move onto /".to_string()))?;
                    let name = remote::parse_name(name)?;
                    let parent = remote::folder(api, &parent).await?;
                    (
                        MoveRequest {
                            name: Some(name),
                            parent_id: Some(parent.folder_id),
                        },
                        path.clone(),
                    )
                }
            }
        }
    };
    let id = remote::describe(&entry).0.to_string();
    match entry {
        Entry::File(_) => {
            let file = api.move_file(&id, &body).await?;
            out.result(&file, || format!("moved {id} to {shown}"));
        }
        Entry::Folder(_) => {
            let folder = api.move_folder(&id, &body).await?;
            out.result(&folder, || format!("moved {id} to {shown}"));
        }
    }
    Ok(())
}

/// `rm [-r] TARGET`: to the trash. A folder needs `-r`; `rm -r` of a file is `rm`.
pub async fn rm(api: &Api, target: &str, recursive: bool, out: &Output) -> Result<()> {
    let is_folder = |what: &str| {
        Error::Usage(format!(
            "{what} is a folder: `filestore rm -r {what}` moves it and everything in it to the trash"
        ))
    };
    let (id, kind) = match Target::of(target) {
        Target::Path(path) => match remote::at_path(api, path).await? {
            Entry::File(file) => {
                api.delete(file.file_id.as_str()).await?;
                (file.file_id.to_string(), EntryType::File)
            }
            Entry::Folder(_) if !recursive => return Err(is_folder(&remote::normalize(path))),
            Entry::Folder(folder) => {
                api.delete_folder(folder.folder_id.as_str()).await?;
                (folder.folder_id.to_string(), EntryType::Folder)
            }
        },
        Target::Id(id) if recursive => match api.delete_folder(id).await {
            Ok(()) => (id.to_string(), EntryType::Folder),
            Err(e) if is_not_found(&e) => {
                api.delete(id).await?;
                (id.to_string(), EntryType::File)
            }
            Err(e) => return Err(e),
        },
        Target::Id(id) => match api.delete(id).await {
            Ok(()) => (id.to_string(), EntryType::File),
            Err(e) if is_not_found(&e) => {
                // Say so when it is a folder: rm alone never removes a tree.
                if api.folder(id).await.is_ok() {
                    return Err(is_folder(id));
                }
                return Err(e);
            }
            Err(e) => return Err(e),
        },
    };
    out.result(&json!({ "trashed": id, "type": kind }), || {
        format!(
            "moved {} {id} to the trash; `filestore restore {id}` brings it back",
            kind.as_str()
        )
    });
    Ok(())
}

/// `trash`: every entry, newest first.
pub async fn trash(api: &Api, out: &Output) -> Result<()> {
    let entries = api.trash().await?;
    out.result(&json!({ "entries": entries }), || {
        lines(&entries, "the trash is empty", |e| {
            let slash = if e.entry_type == EntryType::Folder {
                "/"
            } else {
                ""
            };
            format!(
                "{}  {:>10}  trashed {}  purged {}  {}{slash}",
                e.id,
                human_bytes(e.size),
                e.trashed_at,
                e.purge_at,
                e.name
            )
        })
    });
    Ok(())
}

/// `restore ID [--to FOLDER] [--name NAME]`.
pub async fn restore(
    api: &Api,
    id: &str,
    to: Option<&str>,
    name: Option<FileName>,
    out: &Output,
) -> Result<()> {
    let parent_id = match to {
        Some(to) => Some(remote::folder(api, to).await?.folder_id),
        None => None,
    };
    let entry = api.restore(id, &RestoreRequest { parent_id, name }).await?;
    out.result(&entry, || {
        let (id, name) = remote::describe(&entry);
        format!("restored {name:?} ({id})")
    });
    Ok(())
}

/// `purge ID` or `purge --all`: gone for good, space freed.
pub async fn purge(api: &Api, id: Option<&str>, all: bool, out: &Output) -> Result<()> {
    match id {
        Some(id) if !all => {
            api.purge(id).await?;
            out.result(&json!({ "purged": id }), || format!("purged {id}"));
        }
        _ => {
            api.empty_trash().await?;
            out.result(&json!({ "purged": "all" }), || {
                "the trash is empty".to_string()
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use filestore_contract::api::Ancestor;
    use filestore_contract::domain::FolderId;

    fn folder(name: &str, parent: Option<FolderId>) -> FolderView {
        FolderView {
            folder_id: FolderId::generate(),
            name: name.into(),
            parent_id: parent,
            created_at: "t".into(),
        }
    }

    #[test]
    fn folder_paths_come_from_breadcrumbs() {
        let root = FolderResponse {
            folder: folder("", None),
            ancestors: Vec::new(),
        };
        assert_eq!(folder_path(&root), "/");
        let docs = folder("docs", Some(FolderId::root()));
        let deep = FolderResponse {
            folder: folder("2024 é", Some(docs.folder_id.clone())),
            ancestors: vec![
                Ancestor {
                    folder_id: FolderId::root(),
                    name: String::new(),
                },
                Ancestor {
                    folder_id: docs.folder_id.clone(),
                    name: "docs".into(),
                },
            ],
        };
        assert_eq!(folder_path(&deep), "/docs/2024 é");
    }
}
