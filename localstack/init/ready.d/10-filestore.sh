#!/usr/bin/env bash
# Creates on LocalStack what src/provision.rs creates on the embedded emulator: the table
# (PK/SK, TTL on `ttl`, the janitor's sparse index `due` and its hash index `by_sha256`), the hot bucket (CORS for browser PUTs that read ETag) announcing every
# new object to the transfer queue, the transfer queue (15-minute visibility, redrive to its
# dead-letter queue after 5 receives), and the cold bucket the transfer function copies to.
# Idempotent, like provisioning: what exists is left as it is.
set -euo pipefail

table=${FILESTORE_TABLE:-filestore}
hot=${FILESTORE_HOT_BUCKET:-filestore-hot}
cold=${FILESTORE_COLD_BUCKET:-filestore-cold}
queue=${FILESTORE_TRANSFER_QUEUE:-filestore-transfer}

if ! awslocal dynamodb describe-table --table-name "$table" >/dev/null 2>&1; then
    awslocal dynamodb create-table --table-name "$table" \
        --billing-mode PAY_PER_REQUEST \
        --attribute-definitions AttributeName=PK,AttributeType=S AttributeName=SK,AttributeType=S \
        AttributeName=due_pk,AttributeType=S AttributeName=due_at,AttributeType=S \
        AttributeName=sha256,AttributeType=S \
        --key-schema AttributeName=PK,KeyType=HASH AttributeName=SK,KeyType=RANGE \
        --global-secondary-indexes '[{
          "IndexName": "due",
          "KeySchema": [{"AttributeName": "due_pk", "KeyType": "HASH"},
                        {"AttributeName": "due_at", "KeyType": "RANGE"}],
          "Projection": {"ProjectionType": "ALL"}
        }, {
          "IndexName": "by_sha256",
          "KeySchema": [{"AttributeName": "sha256", "KeyType": "HASH"}],
          "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["verified"]}
        }]' >/dev/null
    awslocal dynamodb wait table-exists --table-name "$table"
    awslocal dynamodb update-time-to-live --table-name "$table" \
        --time-to-live-specification Enabled=true,AttributeName=ttl >/dev/null
fi

for bucket in "$hot" "$cold"; do
    awslocal s3api head-bucket --bucket "$bucket" >/dev/null 2>&1 ||
        awslocal s3api create-bucket --bucket "$bucket" >/dev/null
done
awslocal s3api put-bucket-cors --bucket "$hot" --cors-configuration '{
  "CORSRules": [{
    "AllowedOrigins": ["*"],
    "AllowedMethods": ["GET", "PUT", "HEAD"],
    "AllowedHeaders": ["*"],
    "ExposeHeaders": ["ETag"],
    "MaxAgeSeconds": 3600
  }]
}'

queue_arn() {
    awslocal sqs get-queue-attributes --queue-url "$1" --attribute-names QueueArn \
        --query Attributes.QueueArn --output text
}
dlq_url=$(awslocal sqs create-queue --queue-name "$queue-dlq" \
    --attributes MessageRetentionPeriod=1209600 --query QueueUrl --output text)
redrive="{\\\"deadLetterTargetArn\\\":\\\"$(queue_arn "$dlq_url")\\\",\\\"maxReceiveCount\\\":\\\"5\\\"}"
queue_url=$(awslocal sqs create-queue --queue-name "$queue" \
    --attributes "{\"VisibilityTimeout\":\"900\",\"RedrivePolicy\":\"$redrive\"}" \
    --query QueueUrl --output text)

awslocal s3api put-bucket-notification-configuration --bucket "$hot" --notification-configuration "{
  \"QueueConfigurations\": [{
    \"Id\": \"transfer\",
    \"QueueArn\": \"$(queue_arn "$queue_url")\",
    \"Events\": [\"s3:ObjectCreated:*\"]
  }]
}"

echo "filestore: table $table, buckets $hot and $cold, queue $queue_url"
