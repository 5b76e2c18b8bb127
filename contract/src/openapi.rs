//! The OpenAPI 3.1 document of the whole contract, built from the code that serves it: the
//! paths and methods from [`RouteKey::ALL`], the bodies from the types in [`crate::api`] and
//! [`crate::domain`]. Each route's inputs and answers are one arm of an exhaustive `match`,
//! so a route cannot be added without being documented. What every route shares is added
//! in one place: a JSON body brings 400 and 413, a bearer token 401, a path id 404.
//!
//! The document is committed as `docs/openapi.json`; a test fails when it differs from this
//! one (`UPDATE_OPENAPI=1 cargo test -p filestore-contract openapi` rewrites it).

use std::sync::LazyLock;

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem, PathsBuilder,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{ResponseBuilder, ResponsesBuilder};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::tag::TagBuilder;
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, LicenseBuilder, OpenApi, OpenApiBuilder, Ref,
    RefOr, Required,
};
use utoipa::{PartialSchema, ToSchema};

use crate::api::ErrorBody;
use crate::routes::{Function, RouteKey};

const JSON: &str = "application/json";
const BEARER: &str = "bearer";

/// The document, built once.
pub fn document() -> &'static OpenApi {
    static DOC: LazyLock<OpenApi> = LazyLock::new(build);
    &DOC
}

/// The document as served and committed: pretty JSON with a final newline.
pub fn document_json() -> &'static str {
    static JSON_TEXT: LazyLock<String> = LazyLock::new(|| {
        let mut text = document()
            .to_pretty_json()
            .expect("the OpenAPI document serializes");
        text.push('\n');
        text
    });
    &JSON_TEXT
}

/// Schemas referenced so far, gathered into `components/schemas`.
#[derive(Default)]
struct Schemas(Vec<(String, RefOr<Schema>)>);

impl Schemas {
    /// A reference to `T`'s schema, which (with everything it refers to) joins the components.
    fn of<T: ToSchema>(&mut self) -> RefOr<Schema> {
        let name = T::name().into_owned();
        self.0.push((name.clone(), T::schema()));
        T::schemas(&mut self.0);
        RefOr::Ref(Ref::from_schema_name(name))
    }
}

mod routes;

use routes::{Answer, describe};

/// The path parameter: a server-made UUID, or a share link's token.
fn path_param(key: RouteKey) -> Schema {
    match key {
        RouteKey::OpenShare => ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("A share link's token: base64url of 32 random bytes."))
            .pattern(Some("^[A-Za-z0-9_-]{43}$"))
            .into(),
        RouteKey::GetFolder
        | RouteKey::ListChildren
        | RouteKey::MoveFolder
        | RouteKey::DeleteFolder => match crate::domain::FolderId::schema() {
            RefOr::T(schema) => schema,
            RefOr::Ref(_) => unreachable!("a folder id's schema is inline"),
        },
        _ => ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
            .into(),
    }
}

fn integer(minimum: u64, maximum: u64) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(minimum))
        .maximum(Some(maximum))
        .into()
}

fn string_schema() -> Schema {
    ObjectBuilder::new().schema_type(Type::String).into()
}

/// A non-empty string matching `pattern`.
fn string_matching(pattern: &str) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .pattern(Some(pattern))
        .into()
}

fn operation_id(key: RouteKey) -> String {
    let name = format!("{key:?}");
    let mut chars = name.chars();
    chars
        .next()
        .map(|c| c.to_ascii_lowercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

fn http_method(key: RouteKey) -> HttpMethod {
    match key.method().as_str() {
        "GET" => HttpMethod::Get,
        "POST" => HttpMethod::Post,
        "PATCH" => HttpMethod::Patch,
        "DELETE" => HttpMethod::Delete,
        "PUT" => HttpMethod::Put,
        other => unreachable!("no route uses {other}"),
    }
}

fn error_response(description: &str, error_body: &RefOr<Schema>) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        JSON,
        ContentBuilder::new()
            .schema(Some(error_body.clone()))
            .build(),
    )
}

/// One operation: the route's own description plus what its kind implies.
fn operation(key: RouteKey, s: &mut Schemas) -> utoipa::openapi::path::Operation {
    let route = describe(key, s);
    let error_body = s.of::<ErrorBody>();
    let has_id = key.param().is_some();
    let mut answers = route.answers;
    let own = |answers: &[Answer], status: u16| {
        answers.iter().any(|a| match a {
            Answer::Json(st, ..) | Answer::Empty(st, _) | Answer::Error(st, _) => *st == status,
            Answer::Redirect(_) => status == 302,
        })
    };
    if route.body.is_some() || !route.query.is_empty() {
        answers.push(Answer::Error(
            400,
            "`invalid_request` (or a more specific code): the input breaks a rule of its schema \
             or of the state it refers to",
        ));
    }
    if !key.is_public() && !own(&answers, 401) {
        answers.push(Answer::Error(
            401,
            "`unauthorized`: the bearer token is missing, malformed, expired or revoked",
        ));
    }
    if has_id && !own(&answers, 404) {
        answers.push(Answer::Error(
            404,
            "`not_found`: no such id, or not the caller's (the two are never told apart)",
        ));
    }
    if route.body.is_some() && !own(&answers, 413) {
        answers.push(Answer::Error(
            413,
            "`body_too_large`: the body is over 128 KiB",
        ));
    }

    let mut responses: Vec<(u16, ResponseBuilder)> = Vec::new();
    for answer in answers {
        let (status, response) = match answer {
            Answer::Json(status, description, schema) => (
                status,
                ResponseBuilder::new()
                    .description(description)
                    .content(JSON, ContentBuilder::new().schema(Some(*schema)).build()),
            ),
            Answer::Empty(status, description) => {
                (status, ResponseBuilder::new().description(description))
            }
            Answer::Redirect(description) => (
                302,
                ResponseBuilder::new().description(description).header(
                    "Location",
                    HeaderBuilder::new()
                        .schema(Some(
                            ObjectBuilder::new()
                                .schema_type(Type::String)
                                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uri))),
                        ))
                        .description(Some("The presigned URL"))
                        .build(),
                ),
            ),
            Answer::Error(status, description) => {
                let mut response = error_response(description, &error_body);
                if status == 401 {
                    response = response.header(
                        "WWW-Authenticate",
                        HeaderBuilder::new()
                            .schema(Some(string_schema()))
                            .description(Some("`Bearer`"))
                            .build(),
                    );
                }
                if status == 429 {
                    response = response.header(
                        "Retry-After",
                        HeaderBuilder::new()
                            .schema(Some(integer(1, u64::from(u32::MAX))))
                            .description(Some("Seconds until attempts are let through again"))
                            .build(),
                    );
                }
                (status, response)
            }
        };
        responses.push((status, response));
    }
    // Links belong to the first success answer.
    if let Some((_, response)) = responses.iter_mut().find(|(st, _)| (200..300).contains(st)) {
        for (name, to, value) in &route.links {
            let link = LinkBuilder::new()
                .operation_id(operation_id(*to))
                .parameter(
                    to.param().expect("a link names a route with a parameter"),
                    *value,
                )
                .build();
            *response = std::mem::take(response).link(*name, link);
        }
    }
    responses.sort_by_key(|(status, _)| *status);
    let responses = responses
        .into_iter()
        .fold(ResponsesBuilder::new(), |b, (status, r)| {
            b.response(status.to_string(), r.build())
        });

    let mut op = OperationBuilder::new()
        .operation_id(Some(operation_id(key)))
        .tag(key.function().name())
        .summary(Some(route.summary))
        .description(route.description)
        .responses(responses);
    if let Some(name) = key.param() {
        op = op.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(path_param(key))),
        );
    }
    for (name, description, schema) in route.query {
        op = op.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(schema)),
        );
    }
    if let Some(body) = route.body {
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .required(Some(Required::True))
                .content(JSON, ContentBuilder::new().schema(Some(body)).build())
                .build(),
        ));
    }
    op = if key.is_public() {
        op.securities(Some(Vec::<SecurityRequirement>::new()))
    } else {
        op.security(SecurityRequirement::new(BEARER, Vec::<String>::new()))
    };
    op.build()
}

fn build() -> OpenApi {
    let mut schemas = Schemas::default();
    let mut paths = PathsBuilder::new();
    for key in RouteKey::ALL {
        let op = operation(key, &mut schemas);
        paths = paths.path(key.template(), PathItem::new(http_method(key), op));
    }
    let mut components = ComponentsBuilder::new().security_scheme(
        BEARER,
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some("The token of `POST /v1/auth/login`"))
                .build(),
        ),
    );
    let mut seen = std::collections::BTreeSet::new();
    for (name, schema) in schemas.0 {
        if seen.insert(name.clone()) {
            components = components.schema(name, schema);
        }
    }
    let tags = [
        (Function::Auth, "Accounts and tokens"),
        (Function::Upload, "Multipart uploads straight to storage"),
        (Function::Merge, "Completing uploads"),
        (Function::Files, "Files"),
        (
            Function::FastUpload,
            "Instant upload by proof of possession",
        ),
        (Function::Shares, "Share links"),
        (Function::Trash, "The trash: restore and purge"),
        (Function::Folders, "Folders and paths"),
    ]
    .map(|(f, d)| {
        TagBuilder::new()
            .name(f.name())
            .description(Some(d))
            .build()
    });
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("filestore")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "A serverless file store: presigned multipart uploads straight to S3, \
                     hash-verified transfer to a cold store, instant upload by proof of \
                     possession. Every error is `{\"error\":{\"code\",\"message\"}}`.",
                ))
                .license(Some(
                    LicenseBuilder::new()
                        .name("MIT")
                        .identifier(Some("MIT"))
                        .build(),
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components.build()))
        .tags(Some(tags))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn committed_path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
    }

    /// The committed document is the generated one; `UPDATE_OPENAPI=1` rewrites it.
    #[test]
    fn committed_openapi_document_is_current() {
        let path = committed_path();
        let generated = document_json();
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(&path, generated).unwrap();
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "docs/openapi.json differs from the document the code generates; regenerate it \
             with `UPDATE_OPENAPI=1 cargo test -p filestore-contract openapi` and commit it"
        );
    }

    #[test]
    fn every_route_is_documented_once_with_its_method() {
        let doc = serde_json::to_value(document()).unwrap();
        assert_eq!(doc["openapi"], "3.1.0");
        let mut count = 0;
        for key in RouteKey::ALL {
            let method = key.method().as_str().to_ascii_lowercase();
            let op = &doc["paths"][key.template()][&method];
            assert_eq!(op["operationId"], operation_id(key), "{key:?}");
            count += 1;
        }
        let documented: usize = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .map(|item| item.as_object().unwrap().len())
            .sum();
        assert_eq!(documented, count);
    }

    #[test]
    fn public_routes_need_no_token_and_others_a_bearer_token() {
        let doc = serde_json::to_value(document()).unwrap();
        for key in RouteKey::ALL {
            let method = key.method().as_str().to_ascii_lowercase();
            let op = &doc["paths"][key.template()][&method];
            if key.is_public() {
                assert_eq!(op["security"], json!([]), "{key:?}");
                assert!(op["responses"].get("401").is_none() || key == RouteKey::Login);
            } else {
                assert_eq!(op["security"], json!([{BEARER: []}]), "{key:?}");
                assert!(op["responses"].get("401").is_some(), "{key:?}");
            }
        }
    }

    #[test]
    fn every_reference_resolves() {
        let text = document_json();
        let doc: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut stack = vec![&doc];
        while let Some(v) = stack.pop() {
            match v {
                serde_json::Value::Object(map) => {
                    if let Some(serde_json::Value::String(r)) = map.get("$ref") {
                        let name = r.strip_prefix("#/components/schemas/").unwrap();
                        assert!(
                            doc["components"]["schemas"].get(name).is_some(),
                            "dangling {r}"
                        );
                    }
                    stack.extend(map.values());
                }
                serde_json::Value::Array(items) => stack.extend(items),
                _ => {}
            }
        }
    }
}
