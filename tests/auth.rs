//! Accounts: signup, login, `GET /v1/me`, and what tokens are accepted.

use filestore_contract::api::LoginResponse;
use serde_json::json;

use crate::helpers::{TestApp, unique_name};

/// A new user can sign up, log in and see an empty account with the default quota.
#[tokio::test]
async fn signup_login_and_me() {
    let app = TestApp::new().await;
    let me = app.me().await;
    assert_eq!(me.user_id, app.user_id);
    assert_eq!(me.username, app.username);
    assert_eq!(me.used_bytes, 0);
    assert_eq!(me.file_count, 0);
    assert_eq!(me.quota_bytes, 10u64 * 1024 * 1024 * 1024);
    assert!(
        time::OffsetDateTime::parse(
            &me.created_at,
            &time::format_description::well_known::Rfc3339
        )
        .is_ok()
    );
}

/// Usernames are unique, whatever their case.
#[tokio::test]
async fn signup_with_a_taken_username_is_409() {
    let app = TestApp::new().await;
    let anon = TestApp::anonymous();
    anon.post(
        "/v1/auth/signup",
        json!({"username": app.username, "password": "another password"}),
    )
    .await
    .expect_error(409, "username_taken");
    anon.post(
        "/v1/auth/signup",
        json!({"username": app.username.to_uppercase(), "password": "another password"}),
    )
    .await
    .expect_error(409, "username_taken");
}

/// Wrong password and unknown user get the same answer.
#[tokio::test]
async fn login_failures_look_the_same() {
    let app = TestApp::new().await;
    let anon = TestApp::anonymous();
    let wrong = anon
        .post(
            "/v1/auth/login",
            json!({"username": app.username, "password": "not the password"}),
        )
        .await;
    let unknown = anon
        .post(
            "/v1/auth/login",
            json!({"username": unique_name("nobody_"), "password": "not the password"}),
        )
        .await;
    wrong.expect_error(401, "invalid_credentials");
    unknown.expect_error(401, "invalid_credentials");
    assert_eq!(wrong.bytes, unknown.bytes);
}

/// A password change needs the old password, and revokes every token issued before it: the
/// old tokens get 401 at once, the old password no longer logs in, the new one does.
#[tokio::test]
async fn password_change_revokes_earlier_tokens() {
    let app = TestApp::new().await;
    let anon = TestApp::anonymous();
    let second = anon
        .post(
            "/v1/auth/login",
            json!({"username": app.username, "password": app.password}),
        )
        .await
        .expect_body::<LoginResponse>(200)
        .token;

    app.post(
        "/v1/auth/password",
        json!({"old_password": "not my password", "new_password": "a new password"}),
    )
    .await
    .expect_error(403, "wrong_password");
    app.post(
        "/v1/auth/password",
        json!({"old_password": app.password, "new_password": "short"}),
    )
    .await
    .expect_error(400, "invalid_request");
    app.get("/v1/me").await.expect(200);

    app.post(
        "/v1/auth/password",
        json!({"old_password": app.password, "new_password": "a new password"}),
    )
    .await
    .expect(204);
    for token in [app.token.as_deref().unwrap(), second.as_str()] {
        let stale = app.with_token(Some(token));
        stale.get("/v1/me").await.expect_error(401, "unauthorized");
        stale
            .get("/v1/files")
            .await
            .expect_error(401, "unauthorized");
    }
    anon.post(
        "/v1/auth/login",
        json!({"username": app.username, "password": app.password}),
    )
    .await
    .expect_error(401, "invalid_credentials");
    let fresh = anon
        .post(
            "/v1/auth/login",
            json!({"username": app.username, "password": "a new password"}),
        )
        .await
        .expect_body::<LoginResponse>(200)
        .token;
    let me = app.with_token(Some(&fresh)).me().await;
    assert_eq!(me.user_id, app.user_id);
}

/// After 5 failed logins for one username within 15 minutes, login answers 429 with
/// `Retry-After`, even with the right password, and the same for a name that does not exist.
/// Other names are not affected.
#[tokio::test]
async fn failed_logins_are_throttled_per_username_alike_for_unknown_names() {
    let app = TestApp::new().await;
    let anon = TestApp::anonymous();
    let unknown = unique_name("ghost_");
    let login = |username: String, password: &'static str| {
        let anon = &anon;
        async move {
            anon.post(
                "/v1/auth/login",
                json!({"username": username, "password": password}),
            )
            .await
        }
    };
    for name in [app.username.clone(), unknown.clone()] {
        for _ in 0..5 {
            login(name.clone(), "wrong password")
                .await
                .expect_error(401, "invalid_credentials");
        }
    }
    let known = login(app.username.clone(), "correct horse battery").await;
    let ghost = login(unknown.clone(), "wrong password").await;
    for resp in [&known, &ghost] {
        resp.expect_error(429, "too_many_attempts");
        let retry: u64 = resp.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=900).contains(&retry), "Retry-After {retry}");
    }
    assert_eq!(known.bytes, ghost.bytes);
    // Case does not dodge the counter: names are compared case-insensitively.
    login(app.username.to_uppercase(), "wrong password")
        .await
        .expect_error(429, "too_many_attempts");

    // Another user logs in as usual; a success before the limit resets the count.
    let other = TestApp::new().await;
    for _ in 0..4 {
        login(other.username.clone(), "wrong password")
            .await
            .expect_error(401, "invalid_credentials");
    }
    login(other.username.clone(), "correct horse battery")
        .await
        .expect(200);
    for _ in 0..4 {
        login(other.username.clone(), "wrong password")
            .await
            .expect_error(401, "invalid_credentials");
    }
    login(other.username.clone(), "correct horse battery")
        .await
        .expect(200);
}
