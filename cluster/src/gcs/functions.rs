//! The function table: which nodes can run which remote functions and host which actor types.

use std::collections::{BTreeMap, BTreeSet};

use actix::prelude::*;
use raya_common::NodeId;
use serde::{Deserialize, Serialize};

use super::persist::Persisted;
use super::{GcsError, GcsEvent, gcs_requests};

/// What a registered name is.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FunctionKind {
    /// A remote function.
    Function,
    /// An actor type.
    ActorClass,
}

/// A name a node's binary registered.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FunctionInfo {
    /// The registered name.
    pub name: String,
    /// Function or actor type.
    pub kind: FunctionKind,
}

/// Publishes the names a node can run (sent when the node joins).
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<(), GcsError>")]
pub struct RegisterFunctions {
    /// The node.
    pub node: NodeId,
    /// Everything its binary registered.
    pub functions: Vec<FunctionInfo>,
}

/// The live nodes that registered `name`.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<Vec<NodeId>, GcsError>")]
pub struct NodesWithFunction {
    /// The name.
    pub name: String,
}

/// Every registered name with the live nodes that can run it.
#[derive(rkyv::Archive, rkyv::Serialize, rkyv::Deserialize)]
#[rkyv(derive(Debug))]
#[derive(Debug, Clone, Message, Serialize, Deserialize)]
#[rtype(result = "Result<Vec<(FunctionInfo, Vec<NodeId>)>, GcsError>")]
pub struct ListFunctions;

gcs_requests! {
    FunctionTable, functions:
    RegisterFunctions => () as "gcs/RegisterFunctions", access = Join,
        where |m, from| {
            from.is(m.node, "a function list")?;
            if m.functions.len() > MAX_FUNCTIONS_A_NODE {
                return Err(format!(
                    "{} functions registered, more than {MAX_FUNCTIONS_A_NODE}",
                    m.functions.len()
                ));
            }
            m.functions
                .iter()
                .try_for_each(|f| super::nodes::check_text(&f.name, "a function name", MAX_FUNCTION_NAME))
        };
    NodesWithFunction => Vec<NodeId> as "gcs/NodesWithFunction", access = Read;
    ListFunctions => Vec<(FunctionInfo, Vec<NodeId>)> as "gcs/ListFunctions", access = Read;
}

/// Functions and actor types one node registers, at most.
pub const MAX_FUNCTIONS_A_NODE: usize = 65_536;
/// Bytes of a function's name, at most.
pub const MAX_FUNCTION_NAME: usize = 1024;

/// The function table actor.
pub struct FunctionTable {
    by_node: Persisted<NodeId, Vec<FunctionInfo>>,
    by_name: BTreeMap<String, (FunctionInfo, BTreeSet<NodeId>)>,
}

impl FunctionTable {
    pub(crate) fn load(db: &sled::Db) -> Result<Self, GcsError> {
        let by_node: Persisted<NodeId, Vec<FunctionInfo>> = Persisted::open(db, "functions")?;
        let mut t = FunctionTable {
            by_node,
            by_name: BTreeMap::new(),
        };
        t.reindex();
        Ok(t)
    }

    fn reindex(&mut self) {
        self.by_name.clear();
        for (node, fns) in self.by_node.iter() {
            for f in fns {
                self.by_name
                    .entry(f.name.clone())
                    .or_insert_with(|| (f.clone(), BTreeSet::new()))
                    .1
                    .insert(*node);
            }
        }
    }
}

impl Actor for FunctionTable {
    type Context = Context<Self>;
}

impl Handler<RegisterFunctions> for FunctionTable {
    type Result = Result<(), GcsError>;
    fn handle(&mut self, m: RegisterFunctions, _: &mut Context<Self>) -> Self::Result {
        self.by_node.insert(m.node, m.functions)?;
        self.reindex();
        Ok(())
    }
}

impl Handler<NodesWithFunction> for FunctionTable {
    type Result = Result<Vec<NodeId>, GcsError>;
    fn handle(&mut self, m: NodesWithFunction, _: &mut Context<Self>) -> Self::Result {
        Ok(self
            .by_name
            .get(&m.name)
            .map(|(_, nodes)| nodes.iter().copied().collect())
            .unwrap_or_default())
    }
}

impl Handler<ListFunctions> for FunctionTable {
    type Result = Result<Vec<(FunctionInfo, Vec<NodeId>)>, GcsError>;
    fn handle(&mut self, _: ListFunctions, _: &mut Context<Self>) -> Self::Result {
        Ok(self
            .by_name
            .values()
            .map(|(f, nodes)| (f.clone(), nodes.iter().copied().collect()))
            .collect())
    }
}

impl Handler<GcsEvent> for FunctionTable {
    type Result = ();
    fn handle(&mut self, ev: GcsEvent, _: &mut Context<Self>) {
        if let GcsEvent::NodeDead { node, .. } = ev {
            match self.by_node.remove(&node) {
                Ok(_) => self.reindex(),
                Err(e) => {
                    tracing::warn!(%node, error = %e, "could not drop a dead node's functions")
                }
            }
        }
    }
}

impl std::fmt::Debug for FunctionTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FunctionTable").finish_non_exhaustive()
    }
}
