//! The auth function: `POST /v1/auth/signup`, `POST /v1/auth/login`, `GET /v1/me`.
//!
//! Passwords are stored as argon2id PHC strings; usernames are unique case-insensitively
//! through a conditional DynamoDB write. Login answers the same error, in about the same time,
//! for an unknown user and for a wrong password.

use std::convert::Infallible;

use filestore_shared::api::{Credentials, LoginResponse, MeResponse, SignupResponse};
use filestore_shared::auth::{hash_password, verify_password};
use filestore_shared::domain::new_id;
use filestore_shared::http::{RouteKey, json, json_body, resolve, respond};
use filestore_shared::repo::{UserRecord, rfc3339};
use filestore_shared::{ApiError, AppState};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use tracing::instrument;

/// Serves one API Gateway request.
pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Infallible> {
    Ok(respond(route(state, &req).await))
}

async fn route(state: &AppState, req: &Request) -> Result<Response<Body>, ApiError> {
    match resolve(req.method(), req.uri().path())?.key {
        RouteKey::Signup => signup(state, json_body(req)?).await,
        RouteKey::Login => login(state, json_body(req)?).await,
        RouteKey::Me => me(state, &state.authenticate(req)?.sub).await,
        _ => Err(ApiError::NotFound("route")),
    }
}

#[instrument(skip_all, fields(username = %input.username))]
async fn signup(state: &AppState, input: Credentials) -> Result<Response<Body>, ApiError> {
    let user = UserRecord {
        user_id: new_id(),
        username: input.username.to_string(),
        password_hash: hash_password(&input.password).await?,
        created_at: rfc3339(time::OffsetDateTime::now_utc()),
        used_bytes: 0,
        file_count: 0,
        token_version: 0,
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
    let user = match state
        .repo
        .user_id_by_name(&input.username.canonical())
        .await?
    {
        Some(user_id) => state.repo.get_user(&user_id).await?,
        None => None,
    };
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let user = match (verify_password(&input.password, stored).await?, user) {
        (true, Some(user)) => user,
        _ => {
            return Err(ApiError::Unauthorized {
                code: "invalid_credentials",
                message: "wrong username or password".into(),
            });
        }
    };
    let token = state
        .tokens
        .issue(&user.user_id, &user.username, user.token_version)?;
    json(
        StatusCode::OK,
        &LoginResponse {
            token,
            token_type: "Bearer".into(),
            expires_in: state.tokens.ttl().as_secs(),
        },
    )
}

#[instrument(skip(state))]
async fn me(state: &AppState, user_id: &str) -> Result<Response<Body>, ApiError> {
    let user = state
        .repo
        .get_user(user_id)
        .await?
        .ok_or_else(|| ApiError::unauthorized("this account no longer exists"))?;
    json(
        StatusCode::OK,
        &MeResponse {
            user_id: user.user_id,
            username: user.username,
            created_at: user.created_at,
            used_bytes: user.used_bytes,
            quota_bytes: state.config.quota_bytes,
            file_count: user.file_count,
        },
    )
}
