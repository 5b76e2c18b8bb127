//! The auth function: signup, login, `GET /v1/me` and password changes; also the OpenAPI
//! document and the web page ([`web`]), and the contract's 404/405 for unmatched requests.
//!
//! Passwords are stored as argon2id PHC strings; usernames are unique case-insensitively
//! through a conditional DynamoDB write. Login answers the same error, in about the same time,
//! for an unknown user and for a wrong password, and throttles both alike: after
//! [`MAX_FAILED_LOGINS`] failures for one name within [`FAILED_LOGIN_WINDOW`], every login
//! for that name answers 429 until the window ends. A password change bumps the user's token
//! version, which every authenticated request checks, so earlier tokens stop working at once.

use std::convert::Infallible;
use std::time::Duration;

use filestore_contract::RouteKey;
use filestore_contract::api::{
    Credentials, LoginResponse, MeResponse, PasswordChange, SignupResponse, TOKEN_TYPE,
};
use filestore_contract::domain::UserId;
use filestore_shared::auth::{hash_password, verify_password};
use filestore_shared::http::{json, json_body, no_content, respond};
use filestore_shared::repo::{UserRecord, rfc3339};
use filestore_shared::{ApiError, AppState};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use tracing::instrument;

pub mod web;

/// Failed logins for one username that start throttling.
pub const MAX_FAILED_LOGINS: u64 = 5;
/// How long failed logins are remembered, from the first of a series.
pub const FAILED_LOGIN_WINDOW: Duration = Duration::from_secs(15 * 60);

/// Serves one API Gateway request.
pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Infallible> {
    if let Some(page) = web::serve(req.method(), req.uri().path(), &state.config) {
        return Ok(page);
    }
    Ok(respond(route(state, &req).await))
}

async fn route(state: &AppState, req: &Request) -> Result<Response<Body>, ApiError> {
    let route = state.route(req).await?;
    match route.key() {
        RouteKey::Signup => signup(state, json_body(req)?).await,
        RouteKey::Login => login(state, json_body(req)?).await,
        RouteKey::Me => me(state, route.caller()?),
        RouteKey::ChangePassword => change_password(state, route.caller()?, json_body(req)?).await,
        RouteKey::OpenApi => Ok(openapi_document()),
        _ => Err(ApiError::NotFound("route")),
    }
}

/// The OpenAPI document of the whole contract, as generated from the code.
fn openapi_document() -> Response<Body> {
    let mut resp = Response::new(Body::Text(
        filestore_contract::openapi::document_json().into(),
    ));
    resp.headers_mut().insert(
        lambda_http::http::header::CONTENT_TYPE,
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    resp
}

#[instrument(skip_all, fields(username = %input.username))]
async fn signup(state: &AppState, input: Credentials) -> Result<Response<Body>, ApiError> {
    let user = UserRecord {
        user_id: UserId::generate(),
        username: input.username.to_string(),
        password_hash: hash_password(&input.password).await?,
        created_at: time::OffsetDateTime::now_utc(),
        used_bytes: 0,
        file_count: 0,
        token_version: 0,
        quota_bytes: None,
    };
    if !state
        .repo
        .create_user(&user, &input.username.canonical())
        .await?
    {
        return Err(ApiError::conflict(
            "username_taken",
            format!("username {:?} is already taken", input.username.as_str()),
        ));
    }
    tracing::info!(user_id = %user.user_id, "signed up");
    json(
        StatusCode::CREATED,
        &SignupResponse {
            user_id: user.user_id,
            username: user.username,
        },
    )
}

#[instrument(skip_all, fields(username = %input.username))]
async fn login(state: &AppState, input: Credentials) -> Result<Response<Body>, ApiError> {
    let name = input.username.canonical();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (user_id, failures) = state.repo.login_lookup(&name).await?;
    if let Some(f) = failures {
        let ends = f.window_start + FAILED_LOGIN_WINDOW.as_secs() as i64;
        if f.count >= MAX_FAILED_LOGINS && ends > now {
            tracing::warn!(failures = f.count, "login throttled");
            return Err(ApiError::Throttled {
                retry_after: (ends - now) as u64,
            });
        }
    }
    let user = match user_id {
        Some(user_id) => state.repo.get_user(&user_id).await?,
        None => None,
    };
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let user = match (verify_password(&input.password, stored).await?, user) {
        (true, Some(user)) => user,
        _ => {
            state
                .repo
                .record_login_failure(&name, now, FAILED_LOGIN_WINDOW)
                .await?;
            return Err(ApiError::Unauthorized {
                code: "invalid_credentials",
                message: "wrong username or password".into(),
            });
        }
    };
    if failures.is_some() {
        state.repo.clear_login_failures(&name).await?;
    }
    let token = state
        .tokens
        .issue(&user.user_id, &user.username, user.token_version)?;
    json(
        StatusCode::OK,
        &LoginResponse {
            token,
            token_type: TOKEN_TYPE.into(),
            expires_in: state.tokens.ttl().as_secs(),
        },
    )
}

/// The authenticated user's profile: already read by authentication, so no further call.
fn me(state: &AppState, user: &UserRecord) -> Result<Response<Body>, ApiError> {
    json(
        StatusCode::OK,
        &MeResponse {
            user_id: user.user_id.clone(),
            username: user.username.clone(),
            created_at: rfc3339(user.created_at),
            used_bytes: user.used_bytes,
            quota_bytes: state.quota_of(user),
            file_count: user.file_count,
        },
    )
}

#[instrument(skip_all, fields(user_id = %user.user_id))]
async fn change_password(
    state: &AppState,
    user: &UserRecord,
    input: PasswordChange,
) -> Result<Response<Body>, ApiError> {
    if !verify_password(&input.old_password, Some(user.password_hash.clone())).await? {
        return Err(ApiError::Forbidden {
            code: "wrong_password",
            message: "old_password is not this account's password".into(),
        });
    }
    let hash = hash_password(&input.new_password).await?;
    if !state
        .repo
        .change_password(&user.user_id, &hash, user.token_version)
        .await?
    {
        // Another change won; the caller's token is now revoked.
        return Err(ApiError::unauthorized(
            "this token was revoked by a password change; log in again",
        ));
    }
    tracing::info!("password changed; earlier tokens revoked");
    Ok(no_content())
}
