//! The HTTPS client every AWS client of a function shares: hyper with rustls (aws-lc), its
//! trust store built once per cold start from Mozilla's roots compiled in as trust anchors
//! (`webpki-roots`: nothing to read, decode or parse), or from the one PEM bundle
//! `SSL_CERT_FILE` names (a cold store behind a private CA).
//!
//! The SDK's own client (`aws-smithy-http-client`) takes roots only as PEM and rebuilds its
//! trust store each time a client is built or a connector is made: the compiled-in roots
//! went through base64 and back several times per cold start, 42 % of the auth function's
//! init. This client builds the rustls configuration once and hands out one connector (one
//! connection pool) per timeout setting.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_runtime_api::client::connection::{CaptureSmithyConnection, ConnectionMetadata};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::retries::ErrorKind;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use hyper_util::client::legacy::connect::{HttpConnector as TcpConnector, capture_connection};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::config::ConfigError;

type Pool = hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<TcpConnector>, SdkBody>;

/// The HTTPS client of every AWS client: Mozilla's roots, or those of the PEM bundle
/// `ca_bundle` (`SSL_CERT_FILE`) instead. Plain `http://` endpoints (an emulator) work too.
///
/// # Errors
/// `ca_bundle` cannot be read or holds no certificate.
pub fn client(ca_bundle: Option<&str>) -> Result<SharedHttpClient, ConfigError> {
    let roots = match ca_bundle {
        None => RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        },
        Some(path) => bundle_roots(path)?,
    };
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("aws-lc supports the default protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(SharedHttpClient::new(Client {
        tls,
        connectors: Mutex::default(),
    }))
}

/// The root certificates of the PEM bundle at `path`.
fn bundle_roots(path: &str) -> Result<RootCertStore, ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        name: "SSL_CERT_FILE",
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| invalid(format!("reading {path}: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("{path} is not a PEM bundle: {e}")))?;
    let mut roots = RootCertStore::empty();
    let (added, _unparsable) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(invalid(format!("{path} holds no root certificate")));
    }
    Ok(roots)
}

/// One connector per (connect, read) timeout pair the SDK asks for: SDK clients with the same
/// settings share its connection pool, so the connection a cold start opens serves requests.
struct Client {
    tls: rustls::ClientConfig,
    connectors: Mutex<Vec<(TimeoutKey, SharedHttpConnector)>>,
}

type TimeoutKey = (Option<Duration>, Option<Duration>);

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("https::Client").finish_non_exhaustive()
    }
}

impl HttpClient for Client {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let key = (settings.connect_timeout(), settings.read_timeout());
        let mut connectors = self.connectors.lock().expect("no panic holds this lock");
        if let Some((_, connector)) = connectors.iter().find(|(k, _)| *k == key) {
            return connector.clone();
        }
        let mut tcp = TcpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(key.0);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(self.tls.clone())
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let pool = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .build(https);
        let connector = SharedHttpConnector::new(Connector {
            pool,
            read_timeout: key.1,
        });
        connectors.push((key, connector.clone()));
        connector
    }
}

struct Connector {
    pool: Pool,
    /// How long to wait for the response's head once the request is sent.
    read_timeout: Option<Duration>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("https::Connector")
            .field("read_timeout", &self.read_timeout)
            .finish_non_exhaustive()
    }
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let mut request = match request.try_into_http1x() {
            Ok(request) => request,
            Err(e) => return HttpConnectorFuture::ready(Err(ConnectorError::user(e.into()))),
        };
        // The SDK's retry poisons a connection that failed (a timeout, a reset) so that its
        // next attempt opens a fresh one.
        let captured = capture_connection(&mut request);
        if let Some(smithy) = request.extensions().get::<CaptureSmithyConnection>() {
            smithy.set_connection_retriever(move || {
                captured.connection_metadata().as_ref()?;
                let captured = captured.clone();
                Some(
                    ConnectionMetadata::builder()
                        .proxied(false)
                        .poison_fn(move || {
                            if let Some(connection) = captured.connection_metadata().as_ref() {
                                connection.poison();
                            }
                        })
                        .build(),
                )
            });
        }
        let response = self.pool.request(request);
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            let response = match read_timeout {
                None => response.await,
                Some(limit) => tokio::time::timeout(limit, response)
                    .await
                    .map_err(|elapsed| ConnectorError::timeout(elapsed.into()))?,
            }
            .map_err(classify)?;
            HttpResponse::try_from(response.map(SdkBody::from_body_1_x))
                .map_err(|e| ConnectorError::other(e.into(), None))
        })
    }
}

/// Sorts a failed request the way the SDK's retry needs: a timeout, an I/O failure (refused,
/// reset, closed: retried), a fault in the request itself, or something else.
fn classify(error: hyper_util::client::legacy::Error) -> ConnectorError {
    let io = find::<std::io::Error>(&error);
    if io.is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut) {
        return ConnectorError::timeout(error.into());
    }
    if let Some(hyper) = find::<hyper::Error>(&error) {
        if hyper.is_timeout() {
            return ConnectorError::timeout(error.into());
        }
        if hyper.is_user() {
            return ConnectorError::user(error.into());
        }
        // S3 sometimes closes a connection mid-response.
        if hyper.is_incomplete_message() {
            return ConnectorError::other(error.into(), Some(ErrorKind::TransientError));
        }
        if hyper.is_closed() || hyper.is_canceled() {
            return ConnectorError::io(error.into());
        }
    }
    if error.is_connect() || io.is_some() {
        return ConnectorError::io(error.into());
    }
    ConnectorError::other(error.into(), None)
}

/// The first error of type `E` in `error`'s chain of sources.
fn find<'a, E: std::error::Error + 'static>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    std::iter::successors(Some(error), |e| e.source()).find_map(|e| e.downcast_ref::<E>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::{BehaviorVersion, Region, SdkConfig};
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A certificate authority of its own: its PEM, and what signs with its key.
    fn authority(name: &str) -> (String, Issuer<'static, KeyPair>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let pem = params.self_signed(&key).unwrap().pem();
        (pem, Issuer::new(params, key))
    }

    /// An HTTPS endpoint on a loopback port for `localhost`, its certificate signed by
    /// `issuer`, answering every request with an empty DynamoDB answer (`{}`).
    async fn endpoint(issuer: &Issuer<'static, KeyPair>) -> String {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, issuer)
            .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A refused handshake ends here; the client reports it.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut request = Vec::new();
                    let mut buf = [0; 4096];
                    while let Ok(n @ 1..) = tls.read(&mut buf).await {
                        request.extend_from_slice(&buf[..n]);
                        // GetItem's JSON body follows the head; one read of the rest is
                        // enough for the answer, which does not depend on it.
                        if request.windows(4).any(|w| w == b"\r\n\r\n") {
                            break;
                        }
                    }
                    let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\n\
                                  content-length: 2\r\nconnection: close\r\n\r\n{}";
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        format!("https://localhost:{port}")
    }

    /// A DynamoDB read through [`client`] with the roots of `bundle` (or Mozilla's).
    async fn read_through(endpoint: &str, bundle: Option<&str>) -> Result<(), String> {
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
                aws_sdk_dynamodb::config::Credentials::new("id", "secret", None, None, "test"),
            ))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .http_client(client(bundle).unwrap())
            .build();
        aws_sdk_dynamodb::Client::new(&sdk)
            .get_item()
            .table_name("t")
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("k".into()))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(e)))
    }

    /// An endpoint behind a private CA is reached when `SSL_CERT_FILE` holds that CA; one
    /// signed by a CA the bundle does not hold is refused, and so is the private CA's endpoint
    /// with Mozilla's roots.
    #[tokio::test]
    async fn ssl_cert_file_trusts_its_ca_and_no_other() {
        let (private_pem, private_ca) = authority("filestore test CA");
        let (_, unknown_ca) = authority("unknown test CA");
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("bundle.pem");
        std::fs::write(&bundle, private_pem).unwrap();
        let bundle = bundle.to_str().unwrap();

        let trusted = endpoint(&private_ca).await;
        read_through(&trusted, Some(bundle)).await.unwrap();

        let unknown = endpoint(&unknown_ca).await;
        let refused = read_through(&unknown, Some(bundle)).await.unwrap_err();
        assert!(refused.contains("UnknownIssuer"), "{refused}");

        let refused = read_through(&trusted, None).await.unwrap_err();
        assert!(refused.contains("UnknownIssuer"), "{refused}");
    }

    /// Mozilla's roots are all compiled in.
    #[test]
    fn the_compiled_roots_are_mozillas() {
        assert!(webpki_roots::TLS_SERVER_ROOTS.len() > 100);
    }

    /// A bundle that cannot be read, or holds no certificate, is a configuration error
    /// naming `SSL_CERT_FILE`.
    #[test]
    fn a_bad_bundle_names_its_variable() {
        let err = client(Some("/nonexistent/bundle.pem")).unwrap_err();
        assert!(err.to_string().contains("SSL_CERT_FILE"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = client(Some(empty.to_str().unwrap())).unwrap_err();
        assert!(err.to_string().contains("SSL_CERT_FILE"), "{err}");
    }
}
