//! Accounts: signup, login, `GET /v1/me`, what tokens are accepted, and the limits on
//! password guessing and signups, attacked as an attacker would: floods of concurrent
//! requests, many source addresses, forged forwarding headers.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use filestore_contract::api::LoginResponse;
use filestore_dev::gateway::{self, Functions};
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Resp, TestApp, app_state, base_url, output, unique_name};
use filestore_shared::metrics::SIGNUPS_THROTTLED;

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

/// A client of the API at `base` whose connections come from `127.0.0.<host>` (on Linux the
/// whole of 127/8 is loopback), so the API sees it as that source address.
fn client_from(base: &str, host: u8) -> TestApp {
    let mut app = TestApp::anonymous_at(base);
    app.http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, host)))
        .build()
        .expect("http client");
    app
}

/// An anonymous client of the test system from `127.0.0.<host>`.
fn from(host: u8) -> TestApp {
    client_from(base_url(), host)
}

async fn login(client: &TestApp, username: &str, password: &str) -> Resp {
    client
        .post(
            "/v1/auth/login",
            json!({"username": username, "password": password}),
        )
        .await
}

#[track_caller]
fn retry_after(resp: &Resp, at_most: u64) -> u64 {
    resp.expect_error(429, "too_many_attempts");
    let secs: u64 = resp.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=at_most).contains(&secs), "Retry-After {secs}");
    secs
}

/// How many answers of each status.
fn tally(resps: &[Resp]) -> std::collections::BTreeMap<u16, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for resp in resps {
        *counts.entry(resp.status.as_u16()).or_default() += 1;
    }
    counts
}

/// After 5 failed logins for one username from one address within 15 minutes, login from
/// that address answers 429 with `Retry-After`, even with the right password, and the same
/// for a name that does not exist. A right password before the limit is no failure, but it
/// does not forgive the failures before it.
#[tokio::test]
async fn failed_logins_are_throttled_per_username_alike_for_unknown_names() {
    let app = TestApp::new().await;
    let anon = TestApp::anonymous();
    let unknown = unique_name("ghost_");
    for name in [&app.username, &unknown] {
        for _ in 0..5 {
            login(&anon, name, "wrong password")
                .await
                .expect_error(401, "invalid_credentials");
        }
    }
    let known = login(&anon, &app.username, &app.password).await;
    let ghost = login(&anon, &unknown, "wrong password").await;
    for resp in [&known, &ghost] {
        retry_after(resp, 900);
    }
    assert_eq!(known.bytes, ghost.bytes);
    // Case does not dodge the counter: names are compared case-insensitively.
    login(&anon, &app.username.to_uppercase(), "wrong password")
        .await
        .expect_error(429, "too_many_attempts");

    // Another user logs in as usual; a right password among wrong ones counts none.
    let other = TestApp::new().await;
    for _ in 0..4 {
        login(&anon, &other.username, "wrong password")
            .await
            .expect_error(401, "invalid_credentials");
    }
    for _ in 0..3 {
        login(&anon, &other.username, &other.password)
            .await
            .expect(200);
    }
    login(&anon, &other.username, "wrong password")
        .await
        .expect_error(401, "invalid_credentials");
    retry_after(&login(&anon, &other.username, &other.password).await, 900);
}

/// Thirty wrong logins at once, for a known and for an unknown name: each failure is counted
/// before the password is checked, so exactly 5 get 401 and the other 25 get 429, however
/// they interleave. And the right password sent among 29 wrong ones gets no more than the
/// 5 places either.
#[tokio::test]
async fn concurrent_wrong_logins_get_at_most_five_answers_before_429() {
    for trial in 0..3 {
        let app = TestApp::new().await;
        for name in [app.username.clone(), unique_name("ghost_")] {
            let anon = TestApp::anonymous();
            let resps = join_all((0..30).map(|_| login(&anon, &name, "wrong password"))).await;
            let counts = tally(&resps);
            assert_eq!(
                (counts.get(&401), counts.get(&429)),
                (Some(&5), Some(&25)),
                "trial {trial}: {counts:?}"
            );
            for resp in resps
                .iter()
                .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
            {
                retry_after(resp, 900);
            }
        }

        let app = TestApp::new().await;
        let anon = TestApp::anonymous();
        let resps = join_all((0..30).map(|i| {
            let password = if i == 17 {
                app.password.as_str()
            } else {
                "wrong password"
            };
            login(&anon, &app.username, password)
        }))
        .await;
        let counts = tally(&resps);
        let passed = counts.get(&401).unwrap_or(&0) + counts.get(&200).unwrap_or(&0);
        assert!(passed <= 5, "trial {trial}: {counts:?}");
        assert_eq!(passed + counts.get(&429).unwrap_or(&0), 30, "{counts:?}");
    }
}

/// An attacker's 5 wrong logins lock only the attacker's address out: the owner, from
/// another address, logs in with the right password.
#[tokio::test]
async fn failed_logins_from_elsewhere_do_not_lock_the_owner_out() {
    let app = TestApp::new().await;
    let attacker = from(2);
    for _ in 0..5 {
        login(&attacker, &app.username, "wrong password")
            .await
            .expect_error(401, "invalid_credentials");
    }
    retry_after(
        &login(&attacker, &app.username, "wrong password").await,
        900,
    );
    retry_after(&login(&attacker, &app.username, &app.password).await, 900);
    login(&from(3), &app.username, &app.password)
        .await
        .expect_body::<LoginResponse>(200);
}

/// The source address is the TCP peer's, never `X-Forwarded-For`: an attacker who forges it
/// per request is still one address (429 after 5), and one who claims the owner's address
/// does not lock the owner out.
#[tokio::test]
async fn forged_forwarded_for_headers_neither_dodge_nor_frame() {
    let app = TestApp::new().await;
    let attacker = from(4);
    let mut resps = Vec::new();
    for i in 0..10 {
        let resp = attacker
            .http
            .post(format!("{}/v1/auth/login", attacker.base))
            .header("content-type", "application/json")
            .header("x-forwarded-for", format!("127.0.0.5, 198.51.100.{i}"))
            .header("forwarded", format!("for=198.51.100.{i}"))
            .body(json!({"username": app.username, "password": "wrong password"}).to_string())
            .send()
            .await
            .unwrap();
        resps.push(resp.status().as_u16());
    }
    assert_eq!(resps, [401, 401, 401, 401, 401, 429, 429, 429, 429, 429]);
    login(&from(5), &app.username, &app.password)
        .await
        .expect_body::<LoginResponse>(200);
}

/// Past 100 failed logins for one username in an hour, from any number of addresses, login
/// answers 429 for everyone, the owner's right password included.
#[tokio::test]
async fn a_hundred_failures_from_many_addresses_lock_the_name_for_everyone() {
    let app = TestApp::new().await;
    // 20 addresses, 5 wrong guesses each, all at once: each is within its own limit.
    let resps = join_all((10..30).map(|host| {
        let username = app.username.clone();
        async move {
            let attacker = from(host);
            let mut resps = Vec::new();
            for _ in 0..5 {
                resps.push(login(&attacker, &username, "wrong password").await);
            }
            resps
        }
    }))
    .await;
    let resps: Vec<Resp> = resps.into_iter().flatten().collect();
    assert_eq!(tally(&resps).get(&401), Some(&100), "{:?}", tally(&resps));
    retry_after(
        &login(&from(30), &app.username, "wrong password").await,
        3600,
    );
    retry_after(&login(&from(31), &app.username, &app.password).await, 3600);
}

/// A wrong `old_password` is a failed login of that user, counted before it is checked: 30
/// at once get at most 5 answers other than 429, then the password change and login from
/// that address are 429 even with the right password; login from elsewhere still works.
#[tokio::test]
async fn wrong_old_passwords_count_as_failed_logins() {
    let app = TestApp::new().await;
    let change = |old: &str| {
        app.post(
            "/v1/auth/password",
            json!({"old_password": old, "new_password": "a new password"}),
        )
    };
    let resps = join_all((0..30).map(|_| change("not my password"))).await;
    let counts = tally(&resps);
    assert_eq!(
        (counts.get(&403), counts.get(&429)),
        (Some(&5), Some(&25)),
        "{counts:?}"
    );
    for resp in resps.iter().filter(|r| r.status == StatusCode::FORBIDDEN) {
        resp.expect_error(403, "wrong_password");
    }
    retry_after(&change(&app.password).await, 900);
    retry_after(
        &login(&TestApp::anonymous(), &app.username, &app.password).await,
        900,
    );
    login(&from(6), &app.username, &app.password)
        .await
        .expect_body::<LoginResponse>(200);
    // The old password still works: the refused change changed nothing.
    app.get("/v1/me").await.expect(200);
}

/// Signups are limited per source address (`FILESTORE_SIGNUPS_PER_ADDRESS_PER_HOUR`, 10 by
/// default, which the shared test system raises): against a gateway with the default, 25
/// signups at once from one address get exactly 10 answers other than 429, a taken name's
/// 409 counting like a success; another address signs up as usual.
#[tokio::test]
async fn signups_are_limited_per_source_address() {
    let state = app_state().await;
    assert_eq!(state.config.signups_per_address_per_hour, 10);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(gateway::serve(
        listener,
        Functions::shared(Arc::new(state)),
        Arc::new(Default::default()),
    ));
    let taken = TestApp::new().await.username;
    let signup = |client: TestApp, username: String| async move {
        client
            .post(
                "/v1/auth/signup",
                json!({"username": username, "password": "long enough pw"}),
            )
            .await
    };
    let resps = join_all((0..25).map(|i| {
        let name = if i % 5 == 0 {
            taken.clone()
        } else {
            unique_name("flood_")
        };
        signup(client_from(&base, 40), name)
    }))
    .await;
    let counts = tally(&resps);
    let passed = counts.get(&201).unwrap_or(&0) + counts.get(&409).unwrap_or(&0);
    assert_eq!((passed, counts.get(&429)), (10, Some(&15)), "{counts:?}");
    for resp in resps
        .iter()
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
    {
        retry_after(resp, 3600);
    }
    // Each refused signup is counted for the operator, and only those.
    for resp in &resps {
        let counted = output::metric_of(&resp.request_id(), SIGNUPS_THROTTLED.name);
        let refused = resp.status == StatusCode::TOO_MANY_REQUESTS;
        assert_eq!(counted, refused.then(|| json!(1.0)), "{:?}", resp.status);
    }
    let late = signup(client_from(&base, 40), unique_name("late_")).await;
    retry_after(&late, 3600);
    let elsewhere = signup(client_from(&base, 41), unique_name("other_")).await;
    let body: Value = elsewhere.expect(201);
    assert!(body["user_id"].is_string());
    server.abort();
}
