//! Setting a bucket up, as the local runner does on an emulator (on AWS the deployment
//! template makes the buckets): creating it with the CORS rule browsers need, and sending its
//! object-created events to the transfer queue. Never called by a function. A local S3
//! server that implements neither (`s3s-fs`, which benchmarks use) gets the bucket alone,
//! with a warning.

use anyhow::Context;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::types::{
    CorsConfiguration, CorsRule, Event, NotificationConfiguration, QueueConfiguration,
};

use super::Storage;

impl Storage {
    /// Creates the bucket unless it exists, and lets browsers PUT parts and read `ETag`.
    ///
    /// # Errors
    /// Any failure other than "already exists".
    pub async fn create_bucket(&self) -> anyhow::Result<()> {
        let bucket = &self.bucket;
        match self.client.create_bucket().bucket(bucket).send().await {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.code(),
                    Some("BucketAlreadyOwnedByYou") | Some("BucketAlreadyExists")
                ) => {}
            Err(e) => return Err(e).context(format!("creating bucket {bucket}")),
        }
        let rule = CorsRule::builder()
            .allowed_origins("*")
            .allowed_methods("GET")
            .allowed_methods("PUT")
            .allowed_methods("HEAD")
            .allowed_headers("*")
            .expose_headers("ETag")
            .max_age_seconds(3600)
            .build()?;
        let cors = self
            .client
            .put_bucket_cors()
            .bucket(bucket)
            .cors_configuration(CorsConfiguration::builder().cors_rules(rule).build()?)
            .send()
            .await;
        match cors {
            Err(e) if e.code() == Some("NotImplemented") => {
                tracing::warn!(
                    bucket,
                    "the endpoint takes no CORS rule: browsers cannot send it parts"
                );
            }
            other => {
                other.context("setting bucket CORS")?;
            }
        }
        Ok(())
    }

    /// Sends every `s3:ObjectCreated:*` event of the bucket to the queue `queue_arn`.
    ///
    /// # Errors
    /// S3 failures.
    pub async fn notify_created(&self, queue_arn: &str) -> anyhow::Result<()> {
        let rule = QueueConfiguration::builder()
            .id("transfer")
            .queue_arn(queue_arn)
            .events(Event::S3ObjectCreated)
            .build()?;
        let notify = self
            .client
            .put_bucket_notification_configuration()
            .bucket(&self.bucket)
            .notification_configuration(
                NotificationConfiguration::builder()
                    .queue_configurations(rule)
                    .build(),
            )
            .send()
            .await;
        match notify {
            Err(e) if e.code() == Some("NotImplemented") => {
                tracing::warn!(
                    bucket = self.bucket,
                    "the endpoint sends no events: uploads will not be transferred to the cold store"
                );
            }
            other => {
                other.context("sending hot bucket events to the transfer queue")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::Client;
    use aws_sdk_s3::error::ErrorMetadata;
    use aws_sdk_s3::operation::create_bucket::CreateBucketOutput;
    use aws_sdk_s3::operation::put_bucket_cors::PutBucketCorsError;
    use aws_sdk_s3::operation::put_bucket_notification_configuration::PutBucketNotificationConfigurationError;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};

    use super::*;

    fn refused(code: &'static str) -> ErrorMetadata {
        ErrorMetadata::builder().code(code).build()
    }

    /// An endpoint that implements neither CORS nor notifications (s3s-fs) still gets its
    /// bucket; any other refusal of either is an error.
    #[tokio::test]
    async fn cors_and_events_are_skipped_only_where_not_implemented() {
        for (code, ok) in [("NotImplemented", true), ("AccessDenied", false)] {
            let create =
                mock!(Client::create_bucket).then_output(|| CreateBucketOutput::builder().build());
            let cors = mock!(Client::put_bucket_cors)
                .then_error(move || PutBucketCorsError::generic(refused(code)));
            let events =
                mock!(Client::put_bucket_notification_configuration).then_error(move || {
                    PutBucketNotificationConfigurationError::generic(refused(code))
                });
            let storage = Storage::new(
                mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&create, &cors, &events]),
                "hot",
            );
            assert_eq!(storage.create_bucket().await.is_ok(), ok, "{code}");
            assert_eq!(
                storage.notify_created("arn:aws:sqs:q").await.is_ok(),
                ok,
                "{code}"
            );
            assert_eq!(cors.num_calls(), 1);
        }
    }
}
