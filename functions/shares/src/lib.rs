//! The shares function: share links to one file, with an expiry and an optional download
//! limit. `POST/GET /v1/files/{id}/shares` and `DELETE /v1/shares/{id}` are the owner's;
//! `GET /v1/s/{token}` is public and redirects to a presigned GET.
//!
//! The token is 256 random bits, shown once in the link; only its SHA-256 is stored, so a
//! leaked table does not leak working links. Every failure of the public route (unknown,
//! revoked, expired, exhausted, file trashed or purged) is the same 404.

use std::convert::Infallible;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use filestore_contract::api::{CreateShareRequest, CreateShareResponse, ShareList};
use filestore_contract::domain::{FileId, ShareId, UserId};
use filestore_contract::{Function, RouteKey};
use filestore_shared::http::{json, json_body, no_content, redirect, respond, serve};
use filestore_shared::repo::{ShareRecord, rfc3339};
use filestore_shared::{ApiError, AppState};
use lambda_http::http::StatusCode;
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use rand::RngCore;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tracing::instrument;

/// Random bytes in a share token.
pub const TOKEN_BYTES: usize = 32;

/// Serves one API Gateway request.
pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Infallible> {
    serve(Function::Shares, &req, async {
        respond(route(state, &req).await)
    })
    .await
}

async fn route(state: &AppState, req: &Request) -> Result<Response<Body>, ApiError> {
    let route = state.route(req).await?;
    if route.key() == RouteKey::OpenShare {
        return open(state, route.matched.id.as_deref().unwrap_or_default()).await;
    }
    let user = &route.caller()?.user_id;
    match route.key() {
        RouteKey::CreateShare => {
            let file_id = route.id_of("file")?;
            let base = public_base(state, req)?;
            create(state, user, &file_id, &base, json_body(req)?).await
        }
        RouteKey::ListShares => list(state, user, &route.id_of("file")?).await,
        RouteKey::RevokeShare => revoke(state, user, &route.id_of("share")?).await,
        _ => Err(ApiError::NotFound("route")),
    }
}

/// A new token and the hash that is stored in its place.
pub fn new_token() -> (String, String) {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A token as issued: base64url of [`TOKEN_BYTES`] bytes. Anything else cannot exist.
fn well_formed(token: &str) -> bool {
    URL_SAFE_NO_PAD
        .decode(token)
        .is_ok_and(|b| b.len() == TOKEN_BYTES)
}

/// The base of share links: the configured `FILESTORE_PUBLIC_URL`, else the domain API
/// Gateway says the API was reached on (over https). Never a header the client sent: `Host`
/// and `X-Forwarded-*` are the client's to choose, and a link built from them would point
/// wherever the client likes (`javascript://evil.example/...`).
///
/// # Errors
/// A server fault when neither is known (a deployment without either is misconfigured).
fn public_base(state: &AppState, req: &Request) -> Result<String, ApiError> {
    if let Some(url) = &state.config.public_url {
        return Ok(url.clone());
    }
    let domain = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.domain_name.clone(),
        _ => None,
    };
    match domain {
        Some(domain) if is_host(&domain) => Ok(format!("https://{domain}")),
        _ => Err(anyhow::anyhow!(
            "no public URL for share links: set FILESTORE_PUBLIC_URL (API Gateway reported no domain)"
        )
        .into()),
    }
}

/// A DNS name or an address with an optional port, as API Gateway reports a domain.
fn is_host(domain: &str) -> bool {
    !domain.is_empty()
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

#[instrument(skip(state, base, input))]
async fn create(
    state: &AppState,
    user_id: &UserId,
    file_id: &FileId,
    base: &str,
    input: CreateShareRequest,
) -> Result<Response<Body>, ApiError> {
    state.owned_file(user_id, file_id).await?;
    let (token, token_hash) = new_token();
    let now = OffsetDateTime::now_utc();
    let share = ShareRecord {
        user_id: user_id.clone(),
        share_id: ShareId::generate(),
        file_id: file_id.clone(),
        token_hash,
        created_at: now,
        expires_at: now + std::time::Duration::from_secs(input.expires_in.get()),
        max_downloads: input.max_downloads.map(|m| m.get()),
        downloads: 0,
    };
    state.repo.put_share(&share).await?;
    tracing::info!(share_id = %share.share_id, "share created");
    json(
        StatusCode::CREATED,
        &CreateShareResponse {
            share_id: share.share_id.clone(),
            url: format!("{base}/v1/s/{token}"),
            expires_at: rfc3339(share.expires_at),
            max_downloads: share.max_downloads,
        },
    )
}

#[instrument(skip(state))]
async fn list(
    state: &AppState,
    user_id: &UserId,
    file_id: &FileId,
) -> Result<Response<Body>, ApiError> {
    state.owned_file(user_id, file_id).await?;
    let now = OffsetDateTime::now_utc();
    let shares = state
        .repo
        .list_shares(user_id, file_id)
        .await?
        .iter()
        .filter(|s| s.expires_at > now)
        .map(ShareRecord::view)
        .collect();
    json(StatusCode::OK, &ShareList { shares })
}

#[instrument(skip(state))]
async fn revoke(
    state: &AppState,
    user_id: &UserId,
    share_id: &ShareId,
) -> Result<Response<Body>, ApiError> {
    let share = state
        .repo
        .get_share(user_id, share_id)
        .await?
        .ok_or(ApiError::NotFound("share"))?;
    if !state.repo.delete_share(&share).await? {
        return Err(ApiError::NotFound("share"));
    }
    tracing::info!("share revoked");
    Ok(no_content())
}

#[instrument(skip_all)]
async fn open(state: &AppState, token: &str) -> Result<Response<Body>, ApiError> {
    let gone = ApiError::NotFound("share");
    if !well_formed(token) {
        return Err(gone);
    }
    let Some(share) = state.repo.share_by_token(&token_hash(token)).await? else {
        return Err(gone);
    };
    // A trashed file's links (or those of a file in a trashed folder) are dead until it is
    // restored, and count nothing meanwhile: the count is conditioned on the file and its
    // folders as read here.
    let Some(file) = state
        .repo
        .get_file(&share.user_id, &share.file_id)
        .await?
        .filter(|file| !file.trashed())
    else {
        return Err(gone);
    };
    let Some(chain) = state
        .repo
        .live_chain(&share.user_id, &file.parent_id)
        .await?
    else {
        return Err(gone);
    };
    if !state
        .repo
        .count_share_download(&share, &file, &chain, OffsetDateTime::now_utc())
        .await?
    {
        return Err(gone);
    }
    tracing::info!(share_id = %share.share_id, downloads = share.downloads + 1, "share opened");
    redirect(&state.presign_download(&file).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bits_and_stored_hashed() {
        let (token, hash) = new_token();
        assert!(well_formed(&token));
        assert_eq!(hash, token_hash(&token));
        assert_ne!(hash, token);
        assert_eq!(hash.len(), 64);
        let (other, _) = new_token();
        assert_ne!(token, other);
    }

    #[test]
    fn only_host_names_make_a_link_base() {
        assert!(is_host("abc123.execute-api.eu-west-1.amazonaws.com"));
        assert!(is_host("127.0.0.1:8080"));
        assert!(!is_host(""));
        assert!(!is_host("evil.example/path"));
        assert!(!is_host("evil.example@x"));
    }

    #[test]
    fn malformed_tokens_are_refused_before_any_lookup() {
        assert!(!well_formed(""));
        assert!(!well_formed("abc"));
        assert!(!well_formed(&"A".repeat(43 + 1)));
        assert!(!well_formed(&format!("{}=", "A".repeat(43))));
    }
}
