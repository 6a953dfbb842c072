//! What a cluster's client and scheduler send each other beyond Ballista's own plans:
//! in-memory tables. arq's computed table functions (`ar_metrics`, `roll_rates`,
//! `promise_kept_rate`, `risk_scores`) are computed by the client (their own SQL on the
//! cluster) and joined to warehouse tables on the cluster as in-memory tables, written
//! into the logical plan as Arrow IPC. Everything else is Ballista's codec.

use std::sync::Arc;

use ballista_core::serde::BallistaLogicalExtensionCodec;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::catalog::TableProvider;
use datafusion::common::{TableReference, exec_datafusion_err, plan_err};
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{AggregateUDF, Extension, LogicalPlan, ScalarUDF, WindowUDF};
use datafusion_proto::logical_plan::LogicalExtensionCodec;

/// Marks an in-memory table in a plan (then its batches, as an Arrow IPC stream).
const MEMORY_TABLE: &[u8] = b"arq-memory-table/1\n";

/// The most an in-memory table may hold to be sent to the cluster inside a plan: plans
/// travel as single gRPC messages, which Ballista limits to 16 MiB.
pub const MAX_SHIPPED_BYTES: usize = 8 << 20;

/// Ballista's logical codec, with in-memory tables encoded as Arrow IPC.
#[derive(Debug, Default)]
pub struct ClusterCodec {
    ballista: BallistaLogicalExtensionCodec,
}

impl LogicalExtensionCodec for ClusterCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        self.ballista.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        match buf.strip_prefix(MEMORY_TABLE) {
            Some(ipc) => decode_memory_table(ipc, table_ref, schema),
            None => self
                .ballista
                .try_decode_table_provider(buf, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        match node.downcast_ref::<MemTable>() {
            Some(table) => encode_memory_table(table_ref, table, buf),
            None => self
                .ballista
                .try_encode_table_provider(table_ref, node, buf),
        }
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.ballista.try_decode_file_format(buf, ctx)
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.ballista.try_encode_file_format(buf, node)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        self.ballista.try_decode_udf(name, buf)
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode_udf(node, buf)
    }

    fn try_decode_udaf(&self, name: &str, buf: &[u8]) -> Result<Arc<AggregateUDF>> {
        self.ballista.try_decode_udaf(name, buf)
    }

    fn try_encode_udaf(&self, node: &AggregateUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode_udaf(node, buf)
    }

    fn try_decode_udwf(&self, name: &str, buf: &[u8]) -> Result<Arc<WindowUDF>> {
        self.ballista.try_decode_udwf(name, buf)
    }

    fn try_encode_udwf(&self, node: &WindowUDF, buf: &mut Vec<u8>) -> Result<()> {
        self.ballista.try_encode_udwf(node, buf)
    }
}

/// The table's batches after [`MEMORY_TABLE`], refused (naming the table) when larger
/// than [`MAX_SHIPPED_BYTES`].
fn encode_memory_table(
    table_ref: &TableReference,
    table: &MemTable,
    buf: &mut Vec<u8>,
) -> Result<()> {
    let mut ipc = Vec::new();
    {
        let mut writer = StreamWriter::try_new(&mut ipc, &table.schema())?;
        for partition in &table.batches {
            let partition = partition
                .try_read()
                .map_err(|_| exec_datafusion_err!("{table_ref}: the table is being written"))?;
            for batch in partition.iter() {
                writer.write(batch)?;
            }
        }
        writer.finish()?;
    }
    if ipc.len() > MAX_SHIPPED_BYTES {
        return plan_err!(
            "{table_ref}: {:.1} MB of computed rows are too many to send to the cluster \
             with the query (at most {} MB): query it on its own (the rest of the query then \
             runs here), or narrow it",
            ipc.len() as f64 / 1e6,
            MAX_SHIPPED_BYTES >> 20
        );
    }
    buf.extend_from_slice(MEMORY_TABLE);
    buf.extend_from_slice(&ipc);
    Ok(())
}

fn decode_memory_table(
    ipc: &[u8],
    table_ref: &TableReference,
    schema: SchemaRef,
) -> Result<Arc<dyn TableProvider>> {
    let reader = StreamReader::try_new(ipc, None)
        .map_err(|e| exec_datafusion_err!("{table_ref}: unreadable in-memory table: {e}"))?;
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(Arc::new(MemTable::try_new(schema, vec![batches])?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int32Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    fn table(rows: usize) -> MemTable {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let ids = Int32Array::from_iter_values(0..rows as i32);
        let names =
            StringArray::from_iter((0..rows).map(|i| (i % 3 != 0).then(|| "x".repeat(i % 7))));
        let batch =
            RecordBatch::try_new(schema.clone(), vec![Arc::new(ids), Arc::new(names)]).unwrap();
        MemTable::try_new(schema, vec![vec![batch]]).unwrap()
    }

    #[test]
    fn an_in_memory_table_comes_back_as_it_was_sent() {
        let codec = ClusterCodec::default();
        let sent = table(1000);
        let name = TableReference::bare("ar_metrics()");
        let mut buf = Vec::new();
        codec
            .try_encode_table_provider(&name, Arc::new(table(1000)), &mut buf)
            .unwrap();
        let ctx = TaskContext::default();
        let back = codec
            .try_decode_table_provider(&buf, &name, sent.schema(), &ctx)
            .unwrap();
        let back = back.downcast_ref::<MemTable>().unwrap();
        let rows = |t: &MemTable| {
            let batches: Vec<RecordBatch> = t.batches[0].try_read().unwrap().clone();
            datafusion::arrow::compute::concat_batches(&t.schema(), &batches).unwrap()
        };
        assert_eq!(rows(back), rows(&sent));
    }

    #[test]
    fn a_table_too_large_to_send_is_refused_by_name() {
        let codec = ClusterCodec::default();
        let mut buf = Vec::new();
        let err = codec
            .try_encode_table_provider(
                &TableReference::bare("risk_scores()"),
                Arc::new(table(2_000_000)),
                &mut buf,
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("risk_scores()") && err.contains("too many"),
            "{err}"
        );
        assert!(buf.is_empty());
    }
}
