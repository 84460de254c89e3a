//! ONNX model files: the protobuf messages an exported model uses, encoded with `prost`, and
//! small builders for graphs of them. Knows no task; each task's exporter builds its graph.
//!
//! The messages are the subset of ONNX's `onnx.proto3` that exported models need, declared here
//! with the schema's field numbers (IR version 8; any opset from 13, whose `Squeeze`, `Slice` and
//! recurrent operators take their axes and bounds as inputs). Tensors are stored as
//! little-endian `raw_data`.

use std::path::Path;

use prost::Message;

use crate::error::Result;

/// The IR version written (ONNX 1.10 and later read it).
pub const IR_VERSION: i64 = 8;
/// The default operator-set version.
pub const DEFAULT_OPSET: i64 = 17;
/// The oldest operator-set version an export accepts.
pub const MIN_OPSET: i64 = 13;

/// `TensorProto.DataType.FLOAT`.
pub const FLOAT: i32 = 1;
/// `TensorProto.DataType.INT64`.
pub const INT64: i32 = 7;

/// `ModelProto`.
#[derive(Clone, PartialEq, Message)]
pub struct ModelProto {
    /// The IR version.
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    /// The tool that wrote the model.
    #[prost(string, tag = "2")]
    pub producer_name: String,
    /// Its version.
    #[prost(string, tag = "3")]
    pub producer_version: String,
    /// What the model is.
    #[prost(string, tag = "6")]
    pub doc_string: String,
    /// The graph.
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
    /// Operator sets used.
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    /// Key-value metadata.
    #[prost(message, repeated, tag = "14")]
    pub metadata_props: Vec<StringStringEntryProto>,
}

/// `OperatorSetIdProto`.
#[derive(Clone, PartialEq, Message)]
pub struct OperatorSetIdProto {
    /// Empty for the core ONNX domain.
    #[prost(string, tag = "1")]
    pub domain: String,
    /// The operator-set version.
    #[prost(int64, tag = "2")]
    pub version: i64,
}

/// `StringStringEntryProto`.
#[derive(Clone, PartialEq, Message)]
pub struct StringStringEntryProto {
    /// Key.
    #[prost(string, tag = "1")]
    pub key: String,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `GraphProto`.
#[derive(Clone, PartialEq, Message)]
pub struct GraphProto {
    /// Nodes in topological order.
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    /// The graph's name.
    #[prost(string, tag = "2")]
    pub name: String,
    /// Constant tensors (the weights).
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    /// What the graph computes.
    #[prost(string, tag = "10")]
    pub doc_string: String,
    /// Inputs.
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    /// Outputs.
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
}

/// `NodeProto`.
#[derive(Clone, PartialEq, Message)]
pub struct NodeProto {
    /// Input value names (`""`: an optional input left out).
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    /// Output value names.
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    /// The node's name.
    #[prost(string, tag = "3")]
    pub name: String,
    /// The operator.
    #[prost(string, tag = "4")]
    pub op_type: String,
    /// Attributes.
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
}

/// `AttributeProto` (the kinds exports use: int, float, string, graph, ints, floats).
#[derive(Clone, PartialEq, Message)]
pub struct AttributeProto {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// A float.
    #[prost(float, tag = "2")]
    pub f: f32,
    /// An integer.
    #[prost(int64, tag = "3")]
    pub i: i64,
    /// A string.
    #[prost(bytes = "vec", tag = "4")]
    pub s: Vec<u8>,
    /// A graph (the body of `Scan`).
    #[prost(message, optional, tag = "6")]
    pub g: Option<GraphProto>,
    /// Floats.
    #[prost(float, repeated, tag = "7")]
    pub floats: Vec<f32>,
    /// Integers.
    #[prost(int64, repeated, tag = "8")]
    pub ints: Vec<i64>,
    /// `AttributeType`: 1 float, 2 int, 3 string, 5 graph, 6 floats, 7 ints.
    #[prost(int32, tag = "20")]
    pub r#type: i32,
}

/// `TensorProto`, its values in `raw_data`.
#[derive(Clone, PartialEq, Message)]
pub struct TensorProto {
    /// Shape.
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    /// Element type ([`FLOAT`], [`INT64`]).
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    /// Name.
    #[prost(string, tag = "8")]
    pub name: String,
    /// Values, little-endian, row-major.
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
}

/// `ValueInfoProto`.
#[derive(Clone, PartialEq, Message)]
pub struct ValueInfoProto {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Type.
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
    /// What the value holds.
    #[prost(string, tag = "3")]
    pub doc_string: String,
}

/// `TypeProto` of a tensor (its `tensor_type` member).
#[derive(Clone, PartialEq, Message)]
pub struct TypeProto {
    /// The tensor type.
    #[prost(message, optional, tag = "1")]
    pub tensor_type: Option<TensorTypeProto>,
}

/// `TypeProto.Tensor`.
#[derive(Clone, PartialEq, Message)]
pub struct TensorTypeProto {
    /// Element type.
    #[prost(int32, tag = "1")]
    pub elem_type: i32,
    /// Shape.
    #[prost(message, optional, tag = "2")]
    pub shape: Option<TensorShapeProto>,
}

/// `TensorShapeProto`.
#[derive(Clone, PartialEq, Message)]
pub struct TensorShapeProto {
    /// Dimensions.
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<Dimension>,
}

/// `TensorShapeProto.Dimension`: a size or a symbolic name.
#[derive(Clone, PartialEq, Message)]
pub struct Dimension {
    /// A fixed size.
    #[prost(int64, optional, tag = "1")]
    pub dim_value: Option<i64>,
    /// A symbolic size (`"T"`, `"B"`).
    #[prost(string, optional, tag = "2")]
    pub dim_param: Option<String>,
}

/// A dimension of a graph input or output.
#[derive(Clone, Debug)]
pub enum Dim {
    /// Fixed.
    Fixed(usize),
    /// Symbolic, named.
    Named(&'static str),
}

/// A graph under construction: nodes, weights, inputs and outputs.
#[derive(Debug, Default)]
pub struct Graph {
    proto: GraphProto,
}

/// A node attribute.
#[derive(Clone, Debug)]
pub enum Attr {
    /// An integer.
    Int(i64),
    /// A float.
    Float(f32),
    /// A string.
    Str(&'static str),
    /// Integers.
    Ints(Vec<i64>),
    /// A graph: a subgraph's body ([`Graph::into_body`]).
    Graph(Box<GraphProto>),
}

impl Graph {
    /// This graph as the body of a control-flow node (`Scan`'s `body`).
    pub fn into_body(self) -> GraphProto {
        self.proto
    }

    /// An empty graph named `name`.
    pub fn new(name: &str, doc: &str) -> Self {
        Graph {
            proto: GraphProto {
                name: name.into(),
                doc_string: doc.into(),
                ..GraphProto::default()
            },
        }
    }

    /// A float weight `values` of shape `dims`, named `name`.
    pub fn weight(&mut self, name: &str, dims: &[usize], values: &[f32]) {
        assert_eq!(
            dims.iter().product::<usize>(),
            values.len(),
            "{name}: shape"
        );
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(name, dims, FLOAT, raw);
    }

    /// An int64 constant shared by several nodes: added once, at the first call.
    pub fn shared_ints(&mut self, name: &str, values: &[i64]) {
        if !self.proto.initializer.iter().any(|t| t.name == name) {
            self.ints(name, values);
        }
    }

    /// An int64 constant.
    pub fn ints(&mut self, name: &str, values: &[i64]) {
        let raw = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.tensor(name, &[values.len()], INT64, raw);
    }

    fn tensor(&mut self, name: &str, dims: &[usize], data_type: i32, raw_data: Vec<u8>) {
        self.proto.initializer.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type,
            name: name.into(),
            raw_data,
        });
    }

    /// A graph input.
    pub fn input(&mut self, name: &str, elem: i32, dims: &[Dim], doc: &str) {
        self.proto.input.push(value_info(name, elem, dims, doc));
    }

    /// A graph output.
    pub fn output(&mut self, name: &str, elem: i32, dims: &[Dim], doc: &str) {
        self.proto.output.push(value_info(name, elem, dims, doc));
    }

    /// A node `op` reading `inputs` and writing `outputs`.
    pub fn node(&mut self, op: &str, inputs: &[&str], outputs: &[&str], attrs: &[(&str, Attr)]) {
        let n = self.proto.node.len();
        self.proto.node.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            name: format!("{op}_{n}"),
            op_type: op.into(),
            attribute: attrs.iter().map(|(k, v)| attribute(k, v)).collect(),
        });
    }

    /// The model: this graph with operator set `opset`.
    pub fn model(self, opset: i64, doc: &str) -> ModelProto {
        ModelProto {
            ir_version: IR_VERSION,
            producer_name: "seqrnn".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            doc_string: doc.into(),
            graph: Some(self.proto),
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: opset,
            }],
            metadata_props: Vec::new(),
        }
    }
}

fn value_info(name: &str, elem: i32, dims: &[Dim], doc: &str) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => Dimension {
                dim_value: Some(*n as i64),
                dim_param: None,
            },
            Dim::Named(s) => Dimension {
                dim_value: None,
                dim_param: Some((*s).into()),
            },
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: elem,
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
        doc_string: doc.into(),
    }
}

fn attribute(name: &str, v: &Attr) -> AttributeProto {
    let mut a = AttributeProto {
        name: name.into(),
        ..AttributeProto::default()
    };
    match v {
        Attr::Float(f) => (a.f, a.r#type) = (*f, 1),
        Attr::Int(i) => (a.i, a.r#type) = (*i, 2),
        Attr::Str(s) => (a.s, a.r#type) = (s.as_bytes().to_vec(), 3),
        Attr::Ints(v) => (a.ints, a.r#type) = (v.clone(), 7),
        Attr::Graph(g) => (a.g, a.r#type) = (Some((**g).clone()), 5),
    }
    a
}

/// Checks an operator-set version asked for.
///
/// # Errors
/// [`crate::error::Error::Config`] below [`MIN_OPSET`] or above 21.
pub fn check_opset(opset: i64) -> Result<()> {
    if !(MIN_OPSET..=21).contains(&opset) {
        return Err(crate::error::Error::Config(format!(
            "--opset {opset}: exports take operator sets {MIN_OPSET} to 21"
        )));
    }
    Ok(())
}

/// Writes `model` to `path` (atomically).
///
/// # Errors
/// I/O errors, naming the file.
pub fn write(model: &ModelProto, path: &Path) -> Result<()> {
    crate::io::write_atomic(path, &model.encode_to_vec())
}

/// Reads a model written by [`write`] (for tests and inspection).
///
/// # Errors
/// I/O errors; [`crate::error::Error::Format`] for bytes that are not such a model.
pub fn read(path: &Path) -> Result<ModelProto> {
    let bytes = std::fs::read(path).map_err(|cause| crate::error::Error::Io {
        path: path.to_path_buf(),
        cause,
    })?;
    ModelProto::decode(bytes.as_slice()).map_err(|e| crate::error::Error::Format {
        path: path.to_path_buf(),
        message: format!("not an ONNX model: {e}"),
    })
}

/// Writes an export into `dir` (created): each `(file name, model)` and `preprocess.json`
/// holding `preprocess`, pretty-printed.
///
/// # Errors
/// I/O errors, naming the file.
pub fn save_export(
    dir: &Path,
    models: Vec<(&str, ModelProto)>,
    preprocess: &serde_json::Value,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|cause| crate::error::Error::Io {
        path: dir.to_path_buf(),
        cause,
    })?;
    for (name, model) in &models {
        write(model, &dir.join(name))?;
    }
    write_json(&dir.join("preprocess.json"), preprocess)
}

/// Writes `value` pretty-printed to `path` (atomically), as an export's JSON files are.
///
/// # Errors
/// I/O errors, naming the file.
pub fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| crate::error::Error::Config(e.to_string()))?;
    crate::io::write_atomic(path, text.as_bytes())
}
