//! The auth function: signup, login, `GET /v1/me` and password changes; also the OpenAPI
//! document and the web page ([`web`]), and the contract's 404/405 for unmatched requests.
//!
//! Passwords are stored as argon2id PHC strings; usernames are unique case-insensitively
//! through a conditional DynamoDB write. Login answers the same error, in about the same time,
//! for an unknown user and for a wrong password, and throttles both alike ([`throttle`]):
//! every password check, at login or as a password change's `old_password`, is counted
//! before it runs, per username and source address and per username. Signups are counted
//! per source address (`FILESTORE_SIGNUPS_PER_ADDRESS_PER_HOUR`), also before any work. A
//! password change bumps the user's token version, which every authenticated request
//! checks, so earlier tokens stop working at once.
//!
//! # Layout
//! - [`throttle`]: the password-guessing limits.
//! - [`web`]: the web page.

use std::convert::Infallible;
use std::time::Duration;

use filestore_contract::domain::Username;

use filestore_contract::api::{
    Credentials, LoginResponse, MeResponse, PasswordChange, SignupResponse, TOKEN_TYPE,
};
use filestore_contract::domain::UserId;
use filestore_contract::{Function, RouteKey};
use filestore_shared::auth::{hash_password, verify_password};
use filestore_shared::http::{json, json_body, no_content, respond, serve, source_address};
use filestore_shared::repo::{Counter, Limit, Taken, UserRecord, rfc3339};
use filestore_shared::{ApiError, AppState, metrics};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use tracing::instrument;

pub mod throttle;
pub mod web;

use throttle::Attempt;

/// How long signups from one address are counted, from the first of a series.
pub const SIGNUP_WINDOW: Duration = Duration::from_secs(60 * 60);

/// Serves one API Gateway request.
pub async fn handler(state: &AppState, req: Request) -> Result<Response<Body>, Infallible> {
    serve(Function::Auth, &req, async {
        match web::serve(req.method(), req.uri().path(), &state.config) {
            Some(page) => page,
            None => respond(route(state, &req).await),
        }
    })
    .await
}

async fn route(state: &AppState, req: &Request) -> Result<Response<Body>, ApiError> {
    let route = state.route(req).await?;
    match route.key() {
        RouteKey::Signup => signup(state, &source_address(req), json_body(req)?).await,
        RouteKey::Login => login(state, &source_address(req), json_body(req)?).await,
        RouteKey::Me => me(state, route.caller()?),
        RouteKey::ChangePassword => {
            let input = json_body(req)?;
            change_password(state, route.caller()?, &source_address(req), input).await
        }
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

#[instrument(skip_all, fields(username = %input.username, address = %address))]
async fn signup(
    state: &AppState,
    address: &str,
    input: Credentials,
) -> Result<Response<Body>, ApiError> {
    // Counted before the password is hashed, and whether or not the name is free: a taken
    // name's 409 is what the limit keeps from being asked at scale.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let limit = Limit {
        max: state.config.signups_per_address_per_hour,
        window: SIGNUP_WINDOW,
    };
    if let Taken::Refused { retry_after } = state
        .repo
        .take(&Counter::signups(address), limit, now)
        .await?
    {
        tracing::warn!(address, "signups throttled");
        metrics::add(metrics::SIGNUPS_THROTTLED, 1.0);
        return Err(ApiError::Throttled { retry_after });
    }
    let user = UserRecord {
        user_id: UserId::generate(),
        username: input.username.to_string(),
        password_hash: hash_password(&input.password).await?,
        created_at: time::OffsetDateTime::now_utc(),
        used_bytes: 0,
        claimed_bytes: 0,
        open_uploads: 0,
        file_count: 0,
        trash_bytes: 0,
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

#[instrument(skip_all, fields(username = %input.username, address = %address))]
async fn login(
    state: &AppState,
    address: &str,
    input: Credentials,
) -> Result<Response<Body>, ApiError> {
    let name = input.username.canonical();
    let attempt = Attempt::begin(state, &name, address).await?;
    let user = match state.repo.user_id_by_name(&name).await? {
        Some(user_id) => state.repo.get_user(&user_id).await?,
        None => None,
    };
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let user = match (verify_password(&input.password, stored).await?, user) {
        (true, Some(user)) => user,
        // The attempt keeps its places: a counted failure.
        _ => {
            metrics::add(metrics::LOGIN_FAILURES, 1.0);
            return Err(ApiError::Unauthorized {
                code: "invalid_credentials",
                message: "wrong username or password".into(),
            });
        }
    };
    attempt.succeeded(state).await;
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
            trash_bytes: user.trash_bytes,
        },
    )
}

#[instrument(skip_all, fields(user_id = %user.user_id, address = %address))]
async fn change_password(
    state: &AppState,
    user: &UserRecord,
    address: &str,
    input: PasswordChange,
) -> Result<Response<Body>, ApiError> {
    // A stolen token must not be a way around login's limits: a wrong old_password is a
    // failed login of this user.
    let name = Username::parse(&user.username)
        .map_err(|e| anyhow::anyhow!("stored username {:?}: {e}", user.username))?
        .canonical();
    let attempt = Attempt::begin(state, &name, address).await?;
    if !verify_password(&input.old_password, Some(user.password_hash.clone())).await? {
        metrics::add(metrics::LOGIN_FAILURES, 1.0);
        return Err(ApiError::Forbidden {
            code: "wrong_password",
            message: "old_password is not this account's password".into(),
        });
    }
    attempt.succeeded(state).await;
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
