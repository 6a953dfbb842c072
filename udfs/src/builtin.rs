//! What this crate's replacements of DataFusion's aggregate built-ins share: every method
//! they do not change is the built-in's.

/// Implements the named [`AggregateUDFImpl`](datafusion::logical_expr::AggregateUDFImpl)
/// methods by calling the built-in's, held in the type's `builtin: Arc<AggregateUDF>`
/// field. Inside the `impl` block: `forward_to_builtin!(name, aliases, signature);`, or
/// `forward_to_builtin!(every_but_grouping, reverse_expr)`: all but the groups
/// accumulator's two methods, `with_beneficial_ordering` and `reverse_expr`, then the rest named.
macro_rules! forward_to_builtin {
    (every_but_grouping $(, $method:ident)* $(,)?) => {
        forward_to_builtin!(
            name,
            aliases,
            schema_name,
            human_display,
            window_function_schema_name,
            display_name,
            window_function_display_name,
            signature,
            return_type,
            return_field,
            is_nullable,
            accumulator,
            state_fields,
            create_sliding_accumulator,
            order_sensitivity,
            simplify,
            simplify_expr_op_literal,
            coerce_types,
            is_descending,
            value_from_stats,
            default_value,
            supports_null_handling_clause,
            supports_within_group_clause,
            set_monotonicity,
            documentation,
            $($method),*
        );
    };
    ($($method:ident),* $(,)?) => {
        $( forward_to_builtin!(@ $method); )*
    };
    (@name) => {
        fn name(&self) -> &str {
            self.builtin.name()
        }
    };
    (@aliases) => {
        fn aliases(&self) -> &[String] {
            self.builtin.aliases()
        }
    };
    (@schema_name) => {
        fn schema_name(
            &self,
            params: &datafusion::logical_expr::expr::AggregateFunctionParams,
        ) -> datafusion::error::Result<String> {
            self.builtin.inner().schema_name(params)
        }
    };
    (@human_display) => {
        fn human_display(
            &self,
            params: &datafusion::logical_expr::expr::AggregateFunctionParams,
        ) -> datafusion::error::Result<String> {
            self.builtin.inner().human_display(params)
        }
    };
    (@window_function_schema_name) => {
        fn window_function_schema_name(
            &self,
            params: &datafusion::logical_expr::expr::WindowFunctionParams,
        ) -> datafusion::error::Result<String> {
            self.builtin.inner().window_function_schema_name(params)
        }
    };
    (@display_name) => {
        fn display_name(
            &self,
            params: &datafusion::logical_expr::expr::AggregateFunctionParams,
        ) -> datafusion::error::Result<String> {
            self.builtin.inner().display_name(params)
        }
    };
    (@window_function_display_name) => {
        fn window_function_display_name(
            &self,
            params: &datafusion::logical_expr::expr::WindowFunctionParams,
        ) -> datafusion::error::Result<String> {
            self.builtin.inner().window_function_display_name(params)
        }
    };
    (@signature) => {
        fn signature(&self) -> &datafusion::logical_expr::Signature {
            self.builtin.signature()
        }
    };
    (@return_type) => {
        fn return_type(
            &self,
            arg_types: &[datafusion::arrow::datatypes::DataType],
        ) -> datafusion::error::Result<datafusion::arrow::datatypes::DataType> {
            self.builtin.inner().return_type(arg_types)
        }
    };
    (@return_field) => {
        fn return_field(
            &self,
            arg_fields: &[datafusion::arrow::datatypes::FieldRef],
        ) -> datafusion::error::Result<datafusion::arrow::datatypes::FieldRef> {
            self.builtin.inner().return_field(arg_fields)
        }
    };
    (@is_nullable) => {
        fn is_nullable(&self) -> bool {
            self.builtin.inner().is_nullable()
        }
    };
    (@accumulator) => {
        fn accumulator(
            &self,
            acc_args: datafusion::logical_expr::function::AccumulatorArgs,
        ) -> datafusion::error::Result<Box<dyn datafusion::logical_expr::Accumulator>> {
            self.builtin.inner().accumulator(acc_args)
        }
    };
    (@state_fields) => {
        fn state_fields(
            &self,
            args: datafusion::logical_expr::function::StateFieldsArgs,
        ) -> datafusion::error::Result<Vec<datafusion::arrow::datatypes::FieldRef>> {
            self.builtin.inner().state_fields(args)
        }
    };
    (@create_sliding_accumulator) => {
        fn create_sliding_accumulator(
            &self,
            args: datafusion::logical_expr::function::AccumulatorArgs,
        ) -> datafusion::error::Result<Box<dyn datafusion::logical_expr::Accumulator>> {
            self.builtin.inner().create_sliding_accumulator(args)
        }
    };
    (@order_sensitivity) => {
        fn order_sensitivity(&self) -> datafusion::logical_expr::utils::AggregateOrderSensitivity {
            self.builtin.inner().order_sensitivity()
        }
    };
    (@simplify) => {
        fn simplify(
            &self,
        ) -> Option<datafusion::logical_expr::function::AggregateFunctionSimplification> {
            self.builtin.inner().simplify()
        }
    };
    (@simplify_expr_op_literal) => {
        fn simplify_expr_op_literal(
            &self,
            agg_function: &datafusion::logical_expr::expr::AggregateFunction,
            arg: &datafusion::logical_expr::Expr,
            op: datafusion::logical_expr::Operator,
            lit: &datafusion::logical_expr::Expr,
            arg_is_left: bool,
        ) -> datafusion::error::Result<Option<datafusion::logical_expr::Expr>> {
            self.builtin
                .inner()
                .simplify_expr_op_literal(agg_function, arg, op, lit, arg_is_left)
        }
    };
    (@reverse_expr) => {
        fn reverse_expr(&self) -> datafusion::logical_expr::ReversedUDAF {
            self.builtin.inner().reverse_expr()
        }
    };
    (@coerce_types) => {
        fn coerce_types(
            &self,
            arg_types: &[datafusion::arrow::datatypes::DataType],
        ) -> datafusion::error::Result<Vec<datafusion::arrow::datatypes::DataType>> {
            self.builtin.inner().coerce_types(arg_types)
        }
    };
    (@is_descending) => {
        fn is_descending(&self) -> Option<bool> {
            self.builtin.inner().is_descending()
        }
    };
    (@value_from_stats) => {
        fn value_from_stats(
            &self,
            statistics_args: &datafusion::logical_expr::StatisticsArgs,
        ) -> Option<datafusion::scalar::ScalarValue> {
            self.builtin.inner().value_from_stats(statistics_args)
        }
    };
    (@default_value) => {
        fn default_value(
            &self,
            data_type: &datafusion::arrow::datatypes::DataType,
        ) -> datafusion::error::Result<datafusion::scalar::ScalarValue> {
            self.builtin.inner().default_value(data_type)
        }
    };
    (@supports_null_handling_clause) => {
        fn supports_null_handling_clause(&self) -> bool {
            self.builtin.inner().supports_null_handling_clause()
        }
    };
    (@supports_within_group_clause) => {
        fn supports_within_group_clause(&self) -> bool {
            self.builtin.inner().supports_within_group_clause()
        }
    };
    (@set_monotonicity) => {
        fn set_monotonicity(
            &self,
            data_type: &datafusion::arrow::datatypes::DataType,
        ) -> datafusion::logical_expr::SetMonotonicity {
            self.builtin.inner().set_monotonicity(data_type)
        }
    };
    (@documentation) => {
        fn documentation(&self) -> Option<&datafusion::logical_expr::Documentation> {
            self.builtin.inner().documentation()
        }
    };
}

pub(crate) use forward_to_builtin;

/// `sql`'s rows as text over the table `t` of `partitions`, in a session of `config` with
/// this crate's functions (`ours`) or DataFusion's alone: a replacement's answers against
/// the built-in's.
#[cfg(test)]
pub(crate) fn rows_of(
    ours: bool,
    config: datafusion::prelude::SessionConfig,
    schema: datafusion::arrow::datatypes::SchemaRef,
    partitions: Vec<Vec<datafusion::arrow::array::RecordBatch>>,
    sql: &str,
) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut ctx = datafusion::prelude::SessionContext::new_with_config(config);
        if ours {
            crate::register_all(&mut ctx).unwrap();
        }
        let table = datafusion::datasource::MemTable::try_new(schema, partitions).unwrap();
        ctx.register_table("t", std::sync::Arc::new(table)).unwrap();
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string();
        text.lines().map(str::to_string).collect()
    })
}
