//! [`AppState`]: what every handler needs, built once per cold start (or once per test run).

use aws_config::{BehaviorVersion, Region, SdkConfig};

use crate::auth::TokenKeys;
use crate::config::{ColdConfig, Config};
use crate::repo::Repo;
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
}

/// An S3 client for the cold store: its own endpoint, region and credentials, and only the
/// checksums every S3-compatible store understands.
pub fn cold_client(sdk: &SdkConfig, cold: &ColdConfig) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::{RequestChecksumCalculation, ResponseChecksumValidation};
    let mut builder = aws_sdk_s3::config::Builder::from(sdk);
    builder.set_endpoint_url(cold.endpoint_url.clone());
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
/// environment, `AWS_ENDPOINT_URL` honoured (an emulator) or not set (AWS).
pub async fn load_sdk_config(config: &Config) -> SdkConfig {
    let mut loader =
        aws_config::defaults(BehaviorVersion::latest()).region(Region::new(config.region.clone()));
    if let Some(endpoint) = &config.endpoint_url {
        loader = loader.endpoint_url(endpoint);
    }
    loader.load().await
}

impl AppState {
    /// Builds the clients. Against an emulator endpoint, S3 uses path-style addressing, since
    /// `bucket.127.0.0.1` does not resolve.
    pub fn new(config: Config, sdk: &SdkConfig) -> Self {
        let s3_config = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(config.endpoint_url.is_some())
            .build();
        let s3 = aws_sdk_s3::Client::from_conf(s3_config);
        let ddb = aws_sdk_dynamodb::Client::new(sdk);
        Self {
            repo: Repo::new(ddb, config.table.clone()),
            storage: Storage::new(s3, config.hot_bucket.clone()),
            cold: config
                .cold
                .as_ref()
                .map(|cold| Storage::new(cold_client(sdk, cold), cold.bucket.clone())),
            tokens: TokenKeys::new(&config.jwt_secret, config.token_ttl),
            config,
        }
    }

    /// Loads the configuration and clients from the environment: a function's cold start.
    ///
    /// # Errors
    /// A missing or malformed environment variable.
    pub async fn from_env() -> Result<Self, crate::config::ConfigError> {
        let config = Config::from_env()?;
        let sdk = load_sdk_config(&config).await;
        Ok(Self::new(config, &sdk))
    }

    /// Authenticates the caller of a request from its bearer token.
    ///
    /// # Errors
    /// 401 when the token is missing, forged or expired.
    pub fn authenticate(
        &self,
        req: &lambda_http::Request,
    ) -> Result<crate::auth::Claims, crate::ApiError> {
        let token = crate::http::bearer_token(req)?;
        self.tokens.verify(token)
    }

    /// The caller's upload if it exists and has not expired; anything else is a 404.
    ///
    /// # Errors
    /// 404, or a repository failure.
    pub async fn live_upload(
        &self,
        user_id: &str,
        upload_id: &str,
    ) -> Result<crate::repo::UploadRecord, crate::ApiError> {
        match self.repo.get_upload(user_id, upload_id).await? {
            Some(u) if !u.is_expired(time::OffsetDateTime::now_utc()) => Ok(u),
            _ => Err(crate::ApiError::NotFound("upload")),
        }
    }
}
