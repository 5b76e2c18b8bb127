//! The deployment template, `infra/sam/template.yaml`, parsed, and the questions the
//! template tests ask it. Shared by the `infra` tests (the template alone) and the
//! end-to-end permissions test (the template against the calls the functions make).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_yaml::Value;

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The parsed template and the questions these tests ask it.
pub struct Template {
    pub doc: Value,
    pub dir: PathBuf,
}

/// One `AWS::Serverless::Function` resource.
pub struct LambdaFunction<'a> {
    pub logical_id: &'a str,
    pub properties: &'a Value,
    pub metadata: &'a Value,
}

impl Template {
    pub fn load() -> Self {
        let path = root().join("infra/sam/template.yaml");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let doc = serde_yaml::from_str(&text)
            .unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
        Self {
            doc,
            dir: path.parent().unwrap().to_path_buf(),
        }
    }

    pub fn resources(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.doc["Resources"]
            .as_mapping()
            .expect("the template has Resources")
            .iter()
            .map(|(k, v)| (k.as_str().expect("logical ids are strings"), v))
    }

    /// The default of a `Number` parameter.
    pub fn parameter_default(&self, name: &str) -> i64 {
        let default = &self.doc["Parameters"][name]["Default"];
        default
            .as_i64()
            .or_else(|| default.as_str().and_then(|s| s.parse().ok()))
            .unwrap_or_else(|| panic!("parameter {name} has no number default"))
    }

    pub fn resource(&self, logical_id: &str) -> &Value {
        let found = &self.doc["Resources"][logical_id];
        assert!(!found.is_null(), "no resource {logical_id}");
        found
    }

    pub fn functions(&self) -> Vec<LambdaFunction<'_>> {
        self.resources()
            .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
            .map(|(logical_id, r)| LambdaFunction {
                logical_id,
                properties: &r["Properties"],
                metadata: &r["Metadata"],
            })
            .collect()
    }

    /// A function's property, or the value `Globals` gives every function.
    pub fn property<'a>(&'a self, function: &'a LambdaFunction<'_>, name: &str) -> &'a Value {
        match &function.properties[name] {
            Value::Null => &self.doc["Globals"]["Function"][name],
            own => own,
        }
    }

    /// The environment variable names a function gets: `Globals` merged with its own.
    pub fn environment(&self, function: &LambdaFunction<'_>) -> BTreeSet<String> {
        let globals = &self.doc["Globals"]["Function"]["Environment"]["Variables"];
        let own = &function.properties["Environment"]["Variables"];
        [globals, own]
            .into_iter()
            .filter_map(Value::as_mapping)
            .flat_map(|vars| vars.keys())
            .map(|k| k.as_str().expect("variable names are strings").to_string())
            .collect()
    }

    /// The value every function gets for the variable `name` (the template's `Globals`).
    pub fn environment_value(&self, name: &str) -> &Value {
        &self.doc["Globals"]["Function"]["Environment"]["Variables"][name]
    }

    /// The crate under `functions/` a function resource is built from.
    pub fn crate_of(&self, function: &LambdaFunction<'_>) -> String {
        let uri = function.properties["CodeUri"]
            .as_str()
            .unwrap_or_else(|| panic!("{} has no CodeUri", function.logical_id));
        let dir = self.dir.join(uri).canonicalize().unwrap_or_else(|e| {
            panic!("{}: CodeUri {uri} does not exist: {e}", function.logical_id)
        });
        assert_eq!(
            dir.parent(),
            Some(root().join("functions").canonicalize().unwrap().as_path()),
            "{}: CodeUri {uri} is not a crate under functions/",
            function.logical_id
        );
        dir.file_name().unwrap().to_string_lossy().into_owned()
    }
}

/// The logical id in `!Ref X`, `!GetAtt X.Attr` or their long forms.
pub fn target(value: &Value) -> Option<&str> {
    match value {
        Value::Tagged(t) if t.tag == "Ref" => t.value.as_str(),
        Value::Tagged(t) if t.tag == "GetAtt" => t.value.as_str()?.split('.').next(),
        Value::Mapping(m) => match (m.get("Ref"), m.get("Fn::GetAtt")) {
            (Some(r), _) => r.as_str(),
            (_, Some(Value::Sequence(s))) => s.first()?.as_str(),
            _ => None,
        },
        _ => None,
    }
}

/// One `Allow` statement of a function's policies, its resources written as `Fn::Sub`
/// strings (`!GetAtt Table.Arn` as `${Table.Arn}`).
#[derive(Debug)]
pub struct Statement {
    pub actions: Vec<String>,
    pub resources: Vec<String>,
}

impl Template {
    /// The function built from `functions/<name>`.
    pub fn function_of_crate(&self, name: &str) -> LambdaFunction<'_> {
        self.functions()
            .into_iter()
            .find(|f| self.crate_of(f) == name)
            .unwrap_or_else(|| panic!("no function is built from functions/{name}"))
    }

    /// Every `Allow` statement of a function's inline policies, both branches of an `!If`
    /// included (a conditional grant is there when its condition holds).
    pub fn statements(&self, function: &LambdaFunction<'_>) -> Vec<Statement> {
        fn policies<'v>(value: &'v Value, out: &mut Vec<&'v Value>) {
            match value {
                Value::Sequence(items) => items.iter().for_each(|v| policies(v, out)),
                Value::Tagged(t) if t.tag == "If" => {
                    let branches = t.value.as_sequence().expect("!If takes a list");
                    branches[1..].iter().for_each(|v| policies(v, out));
                }
                Value::Tagged(t) if t.tag == "Ref" && t.value.as_str() == Some("AWS::NoValue") => {}
                Value::Mapping(_) => out.push(value),
                other => panic!("a policy this test cannot read: {other:?}"),
            }
        }
        fn strings(value: &Value) -> Vec<String> {
            match value {
                Value::String(s) => vec![s.clone()],
                Value::Sequence(items) => items.iter().flat_map(strings).collect(),
                Value::Tagged(t) if t.tag == "GetAtt" => {
                    vec![format!(
                        "${{{}}}",
                        t.value.as_str().expect("!GetAtt X.Attr")
                    )]
                }
                Value::Tagged(t) if t.tag == "Sub" => strings(&t.value),
                Value::Tagged(t) if t.tag == "Ref" => {
                    vec![format!("${{{}}}", t.value.as_str().expect("!Ref X"))]
                }
                other => panic!("a resource this test cannot read: {other:?}"),
            }
        }
        let mut found = Vec::new();
        policies(&function.properties["Policies"], &mut found);
        found
            .into_iter()
            .flat_map(|policy| {
                policy["Statement"]
                    .as_sequence()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter(|s| s["Effect"].as_str() == Some("Allow"))
            .map(|s| Statement {
                actions: strings(&s["Action"]),
                resources: strings(&s["Resource"]),
            })
            .collect()
    }
}
