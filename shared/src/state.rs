//! [`AppState`]: what every handler needs, built once per cold start (or once per test run).

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};

use filestore_contract::domain::{FolderId, UploadId, UserId};

use crate::auth::TokenKeys;
use crate::config::{ColdConfig, Config, ConfigError};
use crate::queue::TransferQueue;
use crate::repo::{Copies, Repo};
use crate::storage::Storage;

/// Configuration plus the clients built from it.
#[derive(Clone)]
pub struct AppState {
    pub config: Config,
    pub repo: Repo,
    pub storage: Storage,
    /// The cold store, when configured.
    pub cold: Option<Storage>,
    pub tokens: TokenKeys,
    /// The transfer queue, when `FILESTORE_TRANSFER_QUEUE_URL` is set.
    pub transfer_queue: Option<TransferQueue>,
}

/// An S3 client for the cold store: its own endpoint, region and credentials, and only the
/// checksums every S3-compatible store understands.
pub fn cold_client(sdk: &SdkConfig, cold: &ColdConfig) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
    let mut builder = aws_sdk_s3::config::Builder::from(sdk);
    // Without an endpoint of its own the cold store is the same S3 as the hot bucket: AWS,
    // or the emulator behind AWS_ENDPOINT_URL.
    if let Some(endpoint) = &cold.endpoint_url {
        builder.set_endpoint_url(Some(endpoint.clone()));
    }
    let mut builder = builder
        .region(Region::new(cold.region.clone()))
        .force_path_style(cold.path_style)
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    if let Some((id, secret)) = &cold.credentials {
        builder = builder.credentials_provider(aws_sdk_s3::config::Credentials::new(
            id,
            secret.expose(),
            None,
            None,
            "filestore-cold",
        ));
    }
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// Loads the SDK configuration the way a Lambda does: credentials and region from the
/// environment, `AWS_ENDPOINT_URL` honoured (an emulator) or not set (AWS), and the HTTPS
/// client of [`crate::https::client`] (Mozilla's roots compiled in, or `SSL_CERT_FILE`).
///
/// Lambda puts the role's credentials in the environment, the first place the default chain
/// looks; naming that provider spares a cold start building the rest of the chain (profile
/// files, web identity through STS, container and instance metadata): a fifth of the
/// instructions auth runs from start to its second request (BENCHMARKS.md, "Cold start").
/// Without those variables the default chain is used.
///
/// # Errors
/// `SSL_CERT_FILE` names a file that cannot be read or holds no certificate.
pub async fn load_sdk_config(config: &Config) -> Result<SdkConfig, ConfigError> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(config.region.clone()))
        .http_client(crate::https::client(config.ca_bundle.as_deref())?);
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        loader = loader.credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        );
    }
    if let Some(endpoint) = &config.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    Ok(loader.load().await)
}

/// The AWS services a function calls on its requests: their connections are opened during
/// its cold start ([`AppState::warm_up`]), and a client it does not use is never built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uses {
    /// The table only (auth, folders).
    DynamoDb,
    /// The table and the hot bucket.
    DynamoDbAndS3,
}

/// How long a cold start waits for a warm-up call before it gives up on it.
const WARM_UP_TIMEOUT: Duration = Duration::from_secs(2);

/// Reads the token key from the Secrets Manager secret `arn`, once, at cold start: the key is
/// then in no function's environment, and only the functions granted that secret can read it.
///
/// # Errors
/// The secret cannot be read, holds no string, or a key under 32 bytes.
pub async fn read_jwt_secret(
    sdk: &SdkConfig,
    arn: &str,
) -> Result<crate::config::Secret, crate::config::ConfigError> {
    const NAME: &str = "FILESTORE_JWT_SECRET_ARN";
    let invalid = |reason: String| crate::config::ConfigError::Invalid { name: NAME, reason };
    let out = aws_sdk_secretsmanager::Client::new(sdk)
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| {
            invalid(format!(
                "reading {arn}: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(e)
            ))
        })?;
    let key = out
        .secret_string
        .ok_or_else(|| invalid(format!("{arn} holds no string")))?;
    Ok(crate::config::Secret::new(crate::config::checked_key(
        key, NAME,
    )?))
}

impl AppState {
    /// Builds the clients: DynamoDB's now, S3's on its first call (a function that uses only
    /// the table never builds one). Against an emulator endpoint, S3 uses path-style
    /// addressing, since `bucket.127.0.0.1` does not resolve.
    pub fn new(config: Config, sdk: &SdkConfig) -> Self {
        let (hot_sdk, path_style) = (sdk.clone(), config.endpoint_url.is_some());
        let ddb = aws_sdk_dynamodb::Client::new(sdk);
        Self {
            repo: Repo::new(ddb, config.table.clone()),
            storage: Storage::lazy(
                move || {
                    aws_sdk_s3::Client::from_conf(
                        aws_sdk_s3::config::Builder::from(&hot_sdk)
                            .force_path_style(path_style)
                            .build(),
                    )
                },
                config.hot_bucket.clone(),
            ),
            cold: config.cold.as_ref().map(|cold| {
                let (sdk, cold_config) = (sdk.clone(), cold.clone());
                Storage::lazy(move || cold_client(&sdk, &cold_config), cold.bucket.clone())
            }),
            tokens: TokenKeys::new(&config.jwt_secret, config.token_ttl),
            transfer_queue: config.transfer_queue_url.as_ref().map(|url| {
                let sdk = sdk.clone();
                TransferQueue::lazy(move || aws_sdk_sqs::Client::new(&sdk), url)
            }),
            config,
        }
    }

    /// Loads the configuration and clients from the environment and opens the connections
    /// of the services the function `uses`: a function's cold start.
    ///
    /// # Errors
    /// A missing or malformed environment variable.
    pub async fn from_env(uses: Uses) -> Result<Self, ConfigError> {
        let mut config = Config::from_env()?;
        let sdk = load_sdk_config(&config).await?;
        if let Some(arn) = &config.jwt_secret_arn {
            config.jwt_secret = read_jwt_secret(&sdk, arn).await?;
        }
        let state = Self::new(config, &sdk);
        state.warm_up(uses).await;
        Ok(state)
    }

    /// [`AppState::from_env`] for a function that signs and verifies no token
    /// ([`Config::from_env_without_key`]).
    ///
    /// # Errors
    /// A missing or malformed environment variable.
    pub async fn from_env_without_key(uses: Uses) -> Result<Self, ConfigError> {
        let config = Config::from_env_without_key()?;
        let sdk = load_sdk_config(&config).await?;
        let state = Self::new(config, &sdk);
        state.warm_up(uses).await;
        Ok(state)
    }

    /// Opens a connection to each service the function `uses` with one cheap call (a read of
    /// an item that does not exist, a head of an object that does not exist), so that its
    /// first request does not pay the TLS handshake: Lambda runs a cold start at full CPU,
    /// a request at the CPU share of the function's memory. Any answer, a refusal included,
    /// leaves the connection open for the request; a failure is logged and the cold start
    /// goes on. Returns each service's outcome.
    pub async fn warm_up(&self, uses: Uses) -> Vec<(&'static str, Result<(), String>)> {
        async fn timed(call: impl Future<Output = Result<(), String>>) -> Result<(), String> {
            tokio::time::timeout(WARM_UP_TIMEOUT, call)
                .await
                .unwrap_or_else(|_| Err(format!("no answer in {WARM_UP_TIMEOUT:?}")))
        }
        let table = timed(self.repo.warm_up());
        let outcomes = if uses == Uses::DynamoDbAndS3 {
            let (table, bucket) = tokio::join!(table, timed(self.storage.warm_up()));
            vec![("dynamodb", table), ("s3", bucket)]
        } else {
            vec![("dynamodb", table.await)]
        };
        for (service, outcome) in &outcomes {
            if let Err(error) = outcome {
                tracing::warn!(service, error, "could not open a connection during init");
            }
        }
        outcomes
    }

    /// What every handler does first: finds the request's route (404/405 otherwise) and, unless
    /// the route is public, authenticates its caller (401 otherwise).
    ///
    /// # Errors
    /// 404 or 405 for a request no route takes; 401 as [`Self::authenticate`] says.
    pub async fn route(
        &self,
        req: &lambda_http::Request,
    ) -> Result<crate::http::Routed, crate::ApiError> {
        let matched = filestore_contract::resolve(req.method(), req.uri().path())?;
        let caller = if matched.key.is_public() {
            None
        } else {
            Some(self.authenticate(req).await?)
        };
        Ok(crate::http::Routed { matched, caller })
    }

    /// Authenticates the caller of a request: a valid bearer token whose token version is
    /// still the user's (a password change revokes earlier tokens). The user's record is
    /// returned, so handlers that need it (quotas, `GET /v1/me`) pay no second read.
    ///
    /// # Errors
    /// 401 when the token is missing, forged, expired or revoked, or the account is gone.
    pub async fn authenticate(
        &self,
        req: &lambda_http::Request,
    ) -> Result<crate::repo::UserRecord, crate::ApiError> {
        let token = crate::http::bearer_token(req)?;
        let claims = self.tokens.verify(token)?;
        match self.repo.get_user(&claims.sub).await? {
            Some(user) if user.token_version == claims.ver => Ok(user),
            Some(_) => Err(crate::ApiError::unauthorized(
                "this token was revoked by a password change; log in again",
            )),
            None => Err(crate::ApiError::unauthorized(
                "this account no longer exists",
            )),
        }
    }

    /// The quota that applies to `user`.
    pub fn quota_of(&self, user: &crate::repo::UserRecord) -> u64 {
        user.quota_bytes.unwrap_or(self.config.quota_bytes)
    }

    /// Refuses early what would pass `user`'s quota with `size` more bytes, judged on the
    /// record authentication read (stored bytes and open uploads' reservations). The write
    /// that claims the bytes checks again, atomically.
    ///
    /// # Errors
    /// 413 `quota_exceeded`.
    pub fn check_quota(
        &self,
        user: &crate::repo::UserRecord,
        size: u64,
    ) -> Result<(), crate::ApiError> {
        let quota = self.quota_of(user);
        if user.claimed_bytes.saturating_add(size) > quota {
            return Err(crate::ApiError::quota_exceeded(
                user.claimed_bytes,
                size,
                quota,
            ));
        }
        Ok(())
    }

    /// A presigned GET of a file's bytes: the hot copy while it is kept, else the verified
    /// cold one.
    ///
    /// # Errors
    /// A cold-only file without a configured cold store, or a presigning failure.
    pub async fn presign_download(
        &self,
        file: &crate::repo::FileRecord,
    ) -> Result<String, crate::ApiError> {
        let (store, key) = match &file.copies {
            Copies::Verified {
                cold_key,
                hot_kept: false,
                ..
            } => (
                self.cold.as_ref().ok_or_else(|| {
                    anyhow::anyhow!(
                        "file {} is only in the cold store, which is not configured",
                        file.file_id
                    )
                })?,
                cold_key.as_str(),
            ),
            Copies::Verified { hot_kept: true, .. } | Copies::Unverified => {
                (&self.storage, file.object_key.as_str())
            }
        };
        Ok(store
            .presign_get(key, &file.name, &file.content_type, self.config.presign_ttl)
            .await?)
    }

    /// Ends an active upload that will never become a File (aborted, expired, or joined into
    /// an object that cannot be one). The record goes first, and only while still active:
    /// that write decides a race with a complete, which either committed first (and keeps
    /// everything: `false`) or will find the upload gone. The same write leaves the upload's
    /// S3 side for the janitor ([`crate::repo::PendingAbort`]); then the multipart upload
    /// goes, and the object its parts may already have been joined into, which no File will
    /// ever name. The upload is ended once the record is gone: an S3 failure after that is
    /// logged and left to the janitor, not answered.
    ///
    /// # Errors
    /// DynamoDB failures of the deciding write.
    pub async fn drop_upload(&self, upload: &crate::repo::UploadRecord) -> anyhow::Result<bool> {
        let due = time::OffsetDateTime::now_utc() + crate::repo::ABORT_GRACE;
        if !self.repo.delete_active_upload(upload, due).await? {
            return Ok(false);
        }
        let pending = crate::repo::PendingAbort::of(upload);
        if let Err(e) = self.finish_abort(&pending).await {
            tracing::warn!(
                upload_id = %upload.upload_id,
                error = format!("{e:#}"),
                "ended upload's S3 side left to the janitor"
            );
        }
        Ok(true)
    }

    /// Removes an ended upload's multipart upload and object, then forgets it: what
    /// [`Self::drop_upload`] does after the deciding write, and the janitor for what a run
    /// left. Each call is idempotent (an upload or object S3 no longer has counts as gone).
    ///
    /// # Errors
    /// S3 or DynamoDB failures; the item stays for the janitor's next try.
    pub async fn finish_abort(&self, pending: &crate::repo::PendingAbort) -> anyhow::Result<()> {
        self.storage
            .abort_multipart(&pending.object_key, &pending.s3_upload_id)
            .await?;
        self.storage.delete_object(&pending.object_key).await?;
        self.repo.forget_pending_abort(pending).await
    }

    /// Ends the caller's expired uploads that are still active, releasing what they
    /// reserved, without waiting for the janitor's next sweep: what a create that would be
    /// refused does first. Returns how many it ended and when the next open upload expires.
    ///
    /// # Errors
    /// DynamoDB or S3 failures.
    pub async fn end_expired_uploads(
        &self,
        user_id: &UserId,
    ) -> anyhow::Result<(u64, Option<time::OffsetDateTime>)> {
        let now = time::OffsetDateTime::now_utc();
        let (mut ended, mut next) = (0, None);
        for upload in self.repo.active_uploads(user_id).await? {
            if !upload.is_expired(now) {
                next = Some(next.map_or(upload.expires_at, |t: time::OffsetDateTime| {
                    t.min(upload.expires_at)
                }));
            } else if self.drop_upload(&upload).await? {
                tracing::info!(upload_id = %upload.upload_id, "expired upload ended");
                ended += 1;
            }
        }
        Ok((ended, next))
    }

    /// The caller's live folder as its chain of folders from the root (itself last; empty
    /// for the root). Another user's, a trashed and an unknown folder are all a 404.
    ///
    /// # Errors
    /// 404, or a repository failure.
    pub async fn live_folder(
        &self,
        user_id: &UserId,
        folder_id: &FolderId,
    ) -> Result<Vec<crate::repo::FolderRecord>, crate::ApiError> {
        self.repo
            .live_chain(user_id, folder_id)
            .await?
            .ok_or(crate::ApiError::NotFound("folder"))
    }

    /// Where a new File is asked to go: its folder must be the caller's and live (404), and
    /// with `on_conflict` `fail` its name free there, with `replace` not a folder's (409
    /// `name_taken`). The write that creates the File checks again, atomically.
    ///
    /// # Errors
    /// 404, 409, or a repository failure.
    pub async fn check_target(
        &self,
        user_id: &UserId,
        parent: &FolderId,
        name: &str,
        on_conflict: filestore_contract::domain::OnConflict,
    ) -> Result<(), crate::ApiError> {
        use filestore_contract::domain::OnConflict;
        self.live_folder(user_id, parent).await?;
        let taken = match on_conflict {
            OnConflict::Rename => false,
            OnConflict::Fail => self.repo.name_in_use(user_id, parent, name).await?,
            OnConflict::Replace => self
                .repo
                .child_id(user_id, parent, crate::keys::Kind::Folder, name)
                .await?
                .is_some(),
        };
        if taken {
            return Err(crate::ApiError::name_taken(name));
        }
        Ok(())
    }

    /// The caller's upload if it exists and has not expired; anything else is a 404.
    ///
    /// # Errors
    /// 404, or a repository failure.
    pub async fn live_upload(
        &self,
        user_id: &UserId,
        upload_id: &UploadId,
    ) -> Result<crate::repo::UploadRecord, crate::ApiError> {
        match self.repo.get_upload(user_id, upload_id).await? {
            Some(u) if !u.is_expired(time::OffsetDateTime::now_utc()) => Ok(u),
            _ => Err(crate::ApiError::NotFound("upload")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A state whose every endpoint is a closed local port, with static credentials and no
    /// retries: nothing answers.
    async fn unreachable() -> AppState {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let endpoint = format!("http://127.0.0.1:{port}");
        let config = Config::from_lookup(|name| match name {
            "AWS_ENDPOINT_URL" => Some(endpoint.clone()),
            "FILESTORE_TABLE" | "FILESTORE_HOT_BUCKET" => Some("t".into()),
            "FILESTORE_JWT_SECRET" => Some("k".repeat(32)),
            _ => None,
        })
        .unwrap();
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(&endpoint)
            .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
                aws_sdk_dynamodb::config::Credentials::new("id", "secret", None, None, "test"),
            ))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .http_client(crate::https::client(None).unwrap())
            .build();
        AppState::new(config, &sdk)
    }

    /// A warm-up nobody answers fails each call, logs it and returns: a cold start goes on.
    #[tokio::test]
    async fn a_refused_warm_up_is_reported_not_fatal() {
        let state = unreachable().await;
        let outcomes = state.warm_up(Uses::DynamoDb).await;
        assert_eq!(outcomes.len(), 1);
        assert!(
            outcomes[0].0 == "dynamodb" && outcomes[0].1.is_err(),
            "{outcomes:?}"
        );
        let outcomes = state.warm_up(Uses::DynamoDbAndS3).await;
        let services: Vec<_> = outcomes.iter().map(|(s, _)| *s).collect();
        assert_eq!(services, ["dynamodb", "s3"]);
        assert!(outcomes.iter().all(|(_, o)| o.is_err()), "{outcomes:?}");
    }
}
