//! Accounts: signup, login, `GET /v1/me`, and what tokens are accepted.

use serde_json::json;

use crate::helpers::{TestApp, unique_name};

/// A new user can sign up, log in and see an empty account with the default quota.
#[tokio::test]
async fn signup_login_and_me() {
    let app = TestApp::new().await;
    let me = app.get("/v1/me").await.expect(200);
    assert_eq!(me["user_id"], app.user_id.as_str());
    assert_eq!(me["username"], app.username.as_str());
    assert_eq!(me["used_bytes"], 0);
    assert_eq!(me["file_count"], 0);
    assert_eq!(me["quota_bytes"], 10u64 * 1024 * 1024 * 1024);
    assert!(
        time::OffsetDateTime::parse(
            me["created_at"].as_str().unwrap(),
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
