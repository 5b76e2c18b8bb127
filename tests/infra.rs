//! The deployment template, `infra/sam/template.yaml`, checked against the code it deploys:
//! every route of the contract reaches the function that serves it and nothing else is
//! routed, every function crate is built for Lambda on arm64, the functions get exactly the
//! environment `Config::from_env` reads, the transfer queue fits the transfer function, and
//! the alarms and the dashboard watch metrics the functions write.
//! Only the template is read: no emulator, no cloud. `infra/check` lints it with AWS's tools.

use std::collections::{BTreeMap, BTreeSet};

use filestore_contract::{Function, RouteKey};
use filestore_shared::config::{Config, ConfigError};
use filestore_shared::metrics;
use serde_yaml::Value;

mod template;
use template::{Template, root, target};

/// Variables the template must not set. Lambda sets `AWS_REGION` itself (a reserved name it
/// refuses in a function's configuration); `AWS_ENDPOINT_URL` points the SDK at an emulator
/// and stays unset on AWS.
const PROVIDED_BY_LAMBDA: [&str; 2] = ["AWS_REGION", "AWS_ENDPOINT_URL"];

/// The function that also answers routes that match nothing (`$default`), so those get the
/// contract's 404 or 405 with the error body: every function's router does.
const UNMATCHED_ROUTES: Function = Function::Auth;

fn function_crates() -> BTreeSet<String> {
    std::fs::read_dir(root().join("functions"))
        .expect("reading functions/")
        .map(|entry| entry.unwrap().path())
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .map(|dir| dir.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

/// Adding a route to `RouteKey` without routing it in the template, routing it to another
/// function, or leaving a removed route behind in the template all fail here.
#[test]
fn every_route_reaches_the_function_that_serves_it_and_nothing_else_is_routed() {
    let template = Template::load();
    let mut routed = BTreeMap::new();
    for function in template.functions() {
        let Some(events) = function.properties["Events"].as_mapping() else {
            continue;
        };
        for (name, event) in events {
            if event["Type"].as_str() != Some("HttpApi") {
                continue;
            }
            let p = &event["Properties"];
            assert_eq!(
                target(&p["ApiId"]),
                Some("HttpApi"),
                "{}.{name:?} is not on the stack's HTTP API",
                function.logical_id
            );
            let key = match (p["Method"].as_str(), p["Path"].as_str()) {
                (None, None) => "$default".to_string(),
                (Some(method), Some(path)) => format!("{} {path}", method.to_uppercase()),
                _ => panic!(
                    "{}.{name:?} needs both Method and Path, or neither",
                    function.logical_id
                ),
            };
            let crate_name = template.crate_of(&function);
            if let Some(earlier) = routed.insert(key.clone(), crate_name) {
                panic!("{key} is routed twice (to {earlier} too)");
            }
        }
    }
    let mut expected: BTreeMap<String, String> = RouteKey::ALL
        .iter()
        .map(|k| (k.route_key(), k.function().name().to_string()))
        .collect();
    expected.insert("$default".into(), UNMATCHED_ROUTES.name().into());
    assert_eq!(routed, expected);
}

/// The template sets exactly what `Config::from_env` reads (less what Lambda provides); every
/// function gets every variable `Config` requires, the transfer function the cold store,
/// and a function that gets the cold store gets all of its settings.
#[test]
fn functions_get_exactly_the_environment_config_reads() {
    let template = Template::load();
    let functions = template.functions();
    let set: BTreeSet<String> = functions
        .iter()
        .flat_map(|f| template.environment(f))
        .collect();
    // The key itself is for the local runner: deployed, functions get the secret's ARN. A CA
    // bundle is the operator's to add, for a cold store behind a private CA.
    let expected: BTreeSet<String> = Config::VARIABLES
        .iter()
        .filter(|v| {
            !PROVIDED_BY_LAMBDA.contains(v)
                && **v != "FILESTORE_JWT_SECRET"
                && **v != "SSL_CERT_FILE"
        })
        .map(|v| v.to_string())
        .collect();
    assert_eq!(set, expected);

    // A value each variable accepts.
    let valid = |name: &str| match name {
        "FILESTORE_JWT_SECRET_ARN" => "arn:aws:secretsmanager:us-east-1:1:secret:k".into(),
        "FILESTORE_COLD_PATH_STYLE" => "true".into(),
        n if n.ends_with("_SECS") || n.ends_with("_BYTES") => "60".into(),
        _ => "x".into(),
    };
    // Config names the first variable it misses: collect them until it has what it needs.
    let mut required: Vec<&str> = vec!["FILESTORE_JWT_SECRET_ARN"];
    loop {
        match Config::from_lookup(|name| required.contains(&name).then(|| valid(name))) {
            Ok(_) => break,
            Err(ConfigError::Missing(name)) => required.push(name),
            Err(e) => panic!("a stand-in value is invalid: {e}"),
        }
    }
    // The key is checked apart (`only_the_functions_that_verify_tokens_may_read_the_key`).
    let required: Vec<&str> = required
        .into_iter()
        .filter(|name| !name.starts_with("FILESTORE_JWT_SECRET"))
        .collect();

    let cold: Vec<&str> = Config::VARIABLES
        .iter()
        .copied()
        .filter(|name| name.starts_with("FILESTORE_COLD_"))
        .collect();
    for function in &functions {
        let env = template.environment(function);
        for name in &required {
            assert!(
                env.contains(*name),
                "{} lacks {name}, which Config requires",
                function.logical_id
            );
        }
        if env.contains("FILESTORE_COLD_BUCKET") {
            for name in &cold {
                assert!(
                    env.contains(*name),
                    "{} reaches the cold store but lacks {name}",
                    function.logical_id
                );
            }
        }
        if template.crate_of(function) == "transfer" {
            assert!(env.contains("FILESTORE_COLD_BUCKET"));
            // Where a transfer too long for one run continues.
            assert!(env.contains("FILESTORE_TRANSFER_QUEUE_URL"));
        }
    }
}

/// Each crate under `functions/` is one Lambda, built by `sam build` with cargo-lambda for
/// Graviton on the OS-only runtime, logging to a group with a retention; no resource points
/// at a crate that is gone.
#[test]
fn every_function_crate_is_deployed_built_with_cargo_lambda_for_arm64() {
    let template = Template::load();
    let mut deployed = BTreeSet::new();
    for function in template.functions() {
        let id = function.logical_id;
        let crate_name = template.crate_of(&function);
        assert!(
            deployed.insert(crate_name.clone()),
            "{crate_name} is deployed twice"
        );
        assert_eq!(
            function.metadata["BuildMethod"].as_str(),
            Some("rust-cargolambda"),
            "{id}"
        );
        assert_eq!(
            template.property(&function, "Runtime").as_str(),
            Some("provided.al2023"),
            "{id}"
        );
        assert_eq!(
            template.property(&function, "Handler").as_str(),
            Some("bootstrap"),
            "{id}"
        );
        let architectures = template.property(&function, "Architectures");
        assert_eq!(
            architectures.as_sequence().map(|a| a.as_slice()),
            Some(&[Value::from("arm64")][..]),
            "{id}"
        );
        let logs = target(&function.properties["LoggingConfig"]["LogGroup"])
            .unwrap_or_else(|| panic!("{id} has no log group of its own"));
        let group = template.resource(logs);
        assert_eq!(group["Type"].as_str(), Some("AWS::Logs::LogGroup"));
        assert!(
            !group["Properties"]["RetentionInDays"].is_null(),
            "{logs} keeps logs forever"
        );
    }
    assert_eq!(deployed, function_crates());
}

/// S3 announces new hot objects on the transfer queue; the transfer function consumes it,
/// reporting failures per message, and a message stays hidden for at least six times the
/// function's timeout (AWS's advice) before another worker may take it.
#[test]
fn the_transfer_queue_feeds_the_transfer_function_with_room_for_its_timeout() {
    let template = Template::load();
    let functions = template.functions();
    let transfer = functions
        .iter()
        .find(|f| template.crate_of(f) == "transfer")
        .expect("a transfer function");
    let events: Vec<&Value> = transfer.properties["Events"]
        .as_mapping()
        .expect("the transfer function has events")
        .values()
        .filter(|e| e["Type"].as_str() == Some("SQS"))
        .collect();
    assert_eq!(events.len(), 1, "one SQS event source");
    let source = &events[0]["Properties"];
    let queue_id = target(&source["Queue"]).expect("the event names its queue");
    assert_eq!(
        source["FunctionResponseTypes"],
        Value::Sequence(vec!["ReportBatchItemFailures".into()])
    );

    let queue = &template.resource(queue_id)["Properties"];
    let timeout = template
        .property(transfer, "Timeout")
        .as_u64()
        .expect("a timeout");
    let visibility = queue["VisibilityTimeout"].as_u64().expect("a visibility");
    assert!(
        visibility >= 6 * timeout,
        "visibility {visibility}s < 6 x {timeout}s"
    );
    let redrive = &queue["RedrivePolicy"];
    let dlq = target(&redrive["deadLetterTargetArn"]).expect("a dead-letter queue");
    assert_eq!(
        template.resource(dlq)["Type"].as_str(),
        Some("AWS::SQS::Queue")
    );
    // The transfer counts a message as dead-lettered on this receive.
    assert_eq!(
        redrive["maxReceiveCount"].as_u64(),
        Some(u64::from(filestore_transfer::MAX_RECEIVES))
    );

    let announced: Vec<&str> = template
        .resources()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::S3::Bucket"))
        .flat_map(|(_, r)| {
            r["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
                .as_sequence()
                .into_iter()
                .flatten()
        })
        .filter(|q| q["Event"].as_str() == Some("s3:ObjectCreated:*"))
        .filter_map(|q| target(&q["Queue"]))
        .collect();
    assert_eq!(announced, [queue_id]);
}

/// The errors and throttles alarms sum every function of the template, so a function added
/// without its line in each alarm fails here rather than failing unwatched; every alarm
/// notifies the operator's topic.
#[test]
fn the_function_alarms_watch_every_function() {
    let template = Template::load();
    let functions: BTreeSet<&str> = template.functions().iter().map(|f| f.logical_id).collect();
    for alarm in ["FunctionErrorsAlarm", "FunctionThrottlesAlarm"] {
        let watched: BTreeSet<&str> = template.resource(alarm)["Properties"]["Metrics"]
            .as_sequence()
            .expect("a metric-math alarm")
            .iter()
            .filter_map(|m| m["MetricStat"]["Metric"]["Dimensions"].as_sequence())
            .flatten()
            .filter(|d| d["Name"].as_str() == Some("FunctionName"))
            .filter_map(|d| target(&d["Value"]))
            .collect();
        assert_eq!(watched, functions, "{alarm}");
    }
    for (name, resource) in template.resources() {
        if resource["Type"].as_str() == Some("AWS::CloudWatch::Alarm") {
            assert!(
                !resource["Properties"]["AlarmActions"].is_null(),
                "{name} notifies no one"
            );
        }
    }
}

/// API Gateway throttles every route (`DefaultRouteSettings`) and the routes that hash a
/// password (signup, login, password change) tighter, with the figures of the template's
/// parameters, so a flood is answered 429 before a function runs.
#[test]
fn the_api_throttles_every_route_and_the_password_routes_tighter() {
    let template = Template::load();
    let api = &template.resource("HttpApi")["Properties"];
    let limits = |settings: &Value| {
        let figure = |name: &str| {
            let parameter = target(&settings[name])
                .unwrap_or_else(|| panic!("{name} is not a parameter: {settings:?}"));
            template.parameter_default(parameter)
        };
        (
            figure("ThrottlingRateLimit"),
            figure("ThrottlingBurstLimit"),
        )
    };
    let default = limits(&api["DefaultRouteSettings"]);
    assert_eq!(default, (100, 200));
    for route in [RouteKey::Signup, RouteKey::Login, RouteKey::ChangePassword] {
        let settings = &api["RouteSettings"][route.route_key().as_str()];
        let auth = limits(settings);
        assert!(
            auth.0 < default.0 && auth.1 < default.1,
            "{route:?}: {auth:?}"
        );
    }
}

/// The token key is read from its Secrets Manager secret by the functions that sign or
/// verify tokens (every HTTP function) and by no other: transfer and janitor get neither the
/// key nor the secret's ARN, and no statement of theirs reaches Secrets Manager, so neither
/// could forge a token. The key is in no function's environment.
#[test]
fn only_the_functions_that_verify_tokens_may_read_the_key() {
    let template = Template::load();
    let secret = template.resource("JwtSecret");
    assert_eq!(secret["Type"].as_str(), Some("AWS::SecretsManager::Secret"));
    assert!(secret["Properties"]["GenerateSecretString"].is_mapping());
    for function in template.functions() {
        let name = template.crate_of(&function);
        let env = template.environment(&function);
        assert!(
            !env.contains("FILESTORE_JWT_SECRET"),
            "{name} holds the key"
        );
        let secret_access: Vec<_> = template
            .statements(&function)
            .into_iter()
            .filter(|s| s.actions.iter().any(|a| a.starts_with("secretsmanager:")))
            .collect();
        if matches!(name.as_str(), "transfer" | "janitor") {
            assert!(
                !env.contains("FILESTORE_JWT_SECRET_ARN"),
                "{name} gets the key's secret"
            );
            assert!(secret_access.is_empty(), "{name} may read a secret");
        } else {
            assert!(
                env.contains("FILESTORE_JWT_SECRET_ARN"),
                "{name} lacks the key's secret"
            );
            assert!(!secret_access.is_empty(), "{name} may not read the key");
            for statement in &secret_access {
                assert_eq!(
                    statement.actions,
                    ["secretsmanager:GetSecretValue"],
                    "{name}"
                );
                assert_eq!(statement.resources, ["${JwtSecret}"], "{name}");
            }
        }
    }
}

/// The alarms on the functions' own metrics name metrics the code writes, under the function
/// that writes them (`shared/src/metrics.rs`), so a renamed metric cannot leave an alarm
/// watching nothing.
#[test]
fn alarms_on_our_metrics_watch_what_the_functions_write() {
    let template = Template::load();
    let mut watched = BTreeSet::new();
    for (name, resource) in template.resources() {
        let props = &resource["Properties"];
        if resource["Type"].as_str() != Some("AWS::CloudWatch::Alarm")
            || props["Namespace"].is_null()
            || props["Namespace"]
                .as_str()
                .is_some_and(|n| n.starts_with("AWS/"))
        {
            continue;
        }
        // The functions write under the namespace the template gives them.
        assert_eq!(
            &props["Namespace"],
            template.environment_value("FILESTORE_METRICS_NAMESPACE"),
            "{name}"
        );
        let metric = props["MetricName"].as_str().expect("a metric name");
        let (_, function) = metrics::ALL
            .iter()
            .find(|(m, _)| m.name == metric)
            .unwrap_or_else(|| panic!("{name} watches {metric}, which no function writes"));
        let dimensions: Vec<(&str, &str)> = props["Dimensions"]
            .as_sequence()
            .expect("dimensions")
            .iter()
            .map(|d| (d["Name"].as_str().unwrap(), d["Value"].as_str().unwrap()))
            .collect();
        let function = function.expect("alarms watch one function's metric");
        assert_eq!(dimensions, [("function", function)], "{name}");
        watched.insert(metric);
    }
    // Where an operator would be paged.
    for metric in [
        metrics::TRANSFER_VERIFICATION_FAILURES,
        metrics::TRANSFERS_DEAD_LETTERED,
        metrics::LOGINS_THROTTLED,
    ] {
        assert!(watched.contains(metric.name), "no alarm on {}", metric.name);
    }
}

/// The dashboard shows every alarm, and its graphs of the functions' metrics name metrics
/// the code writes.
#[test]
fn the_dashboard_shows_every_alarm_and_only_metrics_that_exist() {
    let template = Template::load();
    let Value::Tagged(sub) = &template.resource("Dashboard")["Properties"]["DashboardBody"] else {
        panic!("the dashboard body is a !Sub");
    };
    let body = sub.value[0].as_str().expect("the body's text");
    for (name, resource) in template.resources() {
        if resource["Type"].as_str() == Some("AWS::CloudWatch::Alarm") {
            assert!(
                body.contains(&format!("${{{name}.Arn}}")),
                "{name} not shown"
            );
        }
    }
    let names: BTreeSet<&str> = metrics::ALL.iter().map(|(m, _)| m.name).collect();
    let namespace = format!("{}/${{AWS::StackName}}", metrics::NAMESPACE);
    // Metric rows are `[namespace, name, ...]`, where "." repeats the row above; searches
    // of our namespace name theirs in `MetricName=\"...\"`.
    let mut shown = BTreeSet::new();
    let mut ours = false;
    for line in body.lines().map(str::trim) {
        let fields: Vec<&str> = line.split('"').collect();
        if line.starts_with("[\"") && fields.len() > 3 {
            ours = fields[1] == namespace || (fields[1] == "." && ours);
            if ours {
                shown.insert(fields[3]);
            }
        }
        if line.contains(&format!("{{{namespace},")) {
            let searched = line
                .split(r#"MetricName=\""#)
                .nth(1)
                .expect("a metric name");
            shown.insert(searched.split('\\').next().unwrap());
        }
    }
    for metric in &shown {
        assert!(names.contains(metric), "{metric} is written by no function");
    }
    assert_eq!(shown, names, "every metric is graphed");
}
