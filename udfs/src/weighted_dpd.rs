//! `weighted_dpd(amount, dpd)`: amount-weighted days past due, Σ(amount·dpd) / Σ(amount).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, PrimitiveArray,
};
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Decimal128Type, Field, FieldRef, Float64Type, Int64Type,
};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDFImpl, Documentation, EmitTo, GroupsAccumulator, Signature, Volatility,
};
use datafusion_macros::user_doc;

#[user_doc(
    doc_section(label = "Receivables Functions"),
    description = "Amount-weighted days past due of a group: `sum(amount * dpd) / sum(amount)`. \
Rows where either argument is NULL are skipped; a group without rows, or whose amounts add \
up to zero, gives NULL. Decimal amounts with whole days are summed exactly (128-bit \
integers) and only the final ratio is a Float64; a sum beyond 128 bits is an error, never \
a wrong number.",
    syntax_example = "weighted_dpd(amount, dpd)",
    sql_example = r#"```sql
> SELECT weighted_dpd(amount, dpd) FROM (VALUES (100.00, 10), (300.00, 30)) AS t(amount, dpd);
+--------------------------------+
| weighted_dpd(t.amount,t.dpd)   |
+--------------------------------+
| 25.0                           |
+--------------------------------+
> SELECT customer_id, weighted_dpd(open_amount, days_past_due(due_date, snapshot_date))
  FROM open_items_latest GROUP BY customer_id;
```"#,
    argument(name = "amount", description = "The weight, usually `open_amount`."),
    argument(
        name = "dpd",
        description = "Days past due, usually `days_past_due(due_date, snapshot_date)`."
    )
)]
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct WeightedDpd {
    signature: Signature,
}

impl Default for WeightedDpd {
    fn default() -> Self {
        Self::new()
    }
}

impl WeightedDpd {
    /// The aggregate: numeric amount and days, coerced to an exact or a float path.
    pub fn new() -> Self {
        Self {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

/// The exact path: decimal amounts (as Decimal128(38, scale)) and whole days.
fn is_exact(arg_types: &[DataType]) -> Option<i8> {
    match arg_types {
        [DataType::Decimal128(_, s), d] if d.is_integer() => Some(*s),
        _ => None,
    }
}

impl AggregateUDFImpl for WeightedDpd {
    fn name(&self) -> &str {
        "weighted_dpd"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [amount, dpd] = arg_types else {
            return plan_err!(
                "weighted_dpd takes (amount, dpd), got {} arguments",
                arg_types.len()
            );
        };
        let numeric = |t: &DataType| t.is_numeric() || matches!(t, DataType::Null);
        if !numeric(amount) {
            return plan_err!("weighted_dpd: amount must be numeric, got {amount}");
        }
        if !numeric(dpd) {
            return plan_err!("weighted_dpd: dpd must be numeric, got {dpd}");
        }
        Ok(match is_exact(arg_types) {
            Some(scale) => vec![DataType::Decimal128(38, scale), DataType::Int64],
            None => vec![DataType::Float64, DataType::Float64],
        })
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let sum_type = args.input_fields[0].data_type().clone();
        Ok(vec![
            Arc::new(Field::new(
                format!("{}[weighted]", args.name),
                sum_type.clone(),
                true,
            )),
            Arc::new(Field::new(format!("{}[amount]", args.name), sum_type, true)),
        ])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        Ok(match args.expr_fields[0].data_type() {
            DataType::Decimal128(..) => Box::new(WeightedDpdAccumulator::<Exact>::new(
                args.expr_fields[0].data_type(),
            )),
            _ => Box::new(WeightedDpdAccumulator::<Float>::new(&DataType::Float64)),
        })
    }

    fn groups_accumulator_supported(&self, _args: AccumulatorArgs) -> bool {
        true
    }

    fn create_groups_accumulator(
        &self,
        args: AccumulatorArgs,
    ) -> Result<Box<dyn GroupsAccumulator>> {
        Ok(match args.expr_fields[0].data_type() {
            DataType::Decimal128(..) => Box::new(WeightedDpdGroups::<Exact>::new(
                args.expr_fields[0].data_type(),
            )),
            _ => Box::new(WeightedDpdGroups::<Float>::new(&DataType::Float64)),
        })
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.doc()
    }
}

/// The arithmetic of one path: amounts of `Amount`, days of `Days`, sums in
/// `Amount::Native` (i128 for decimals, f64 for floats).
/// The exact path's operations are checked: `None` is an overflow, which the
/// accumulators report as an error (never a wrapped, wrong number).
trait Path: Send + Sync + 'static {
    type Amount: ArrowPrimitiveType;
    type Days: ArrowPrimitiveType;
    fn weighted(
        amount: Native<Self::Amount>,
        days: Native<Self::Days>,
    ) -> Option<Native<Self::Amount>>;
    fn add(a: Native<Self::Amount>, b: Native<Self::Amount>) -> Option<Native<Self::Amount>>;
    fn sub(a: Native<Self::Amount>, b: Native<Self::Amount>) -> Option<Native<Self::Amount>>;
    fn ratio(weighted: Native<Self::Amount>, amount: Native<Self::Amount>) -> Option<f64>;
}

type Native<T> = <T as ArrowPrimitiveType>::Native;

struct Exact;
impl Path for Exact {
    type Amount = Decimal128Type;
    type Days = Int64Type;
    #[inline]
    fn weighted(amount: i128, days: i64) -> Option<i128> {
        amount.checked_mul(days as i128)
    }
    #[inline]
    fn add(a: i128, b: i128) -> Option<i128> {
        a.checked_add(b)
    }
    fn sub(a: i128, b: i128) -> Option<i128> {
        a.checked_sub(b)
    }
    fn ratio(weighted: i128, amount: i128) -> Option<f64> {
        (amount != 0).then(|| weighted as f64 / amount as f64)
    }
}

struct Float;
impl Path for Float {
    type Amount = Float64Type;
    type Days = Float64Type;
    #[inline]
    fn weighted(amount: f64, days: f64) -> Option<f64> {
        Some(amount * days)
    }
    #[inline]
    fn add(a: f64, b: f64) -> Option<f64> {
        Some(a + b)
    }
    fn sub(a: f64, b: f64) -> Option<f64> {
        Some(a - b)
    }
    fn ratio(weighted: f64, amount: f64) -> Option<f64> {
        (amount != 0.0).then(|| weighted / amount)
    }
}

/// The error of a sum that does not fit 128 bits.
fn overflow() -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::Execution(
        "weighted_dpd: amount x days past due overflows the exact 128-bit decimal sum; \
         cast the amount to DOUBLE for an approximate result"
            .into(),
    )
}

/// Adds `a` and `a·d` to the sums (`sign` -1 takes them away); false on overflow.
#[inline]
fn accumulate<P: Path>(
    weighted: &mut Native<P::Amount>,
    amount: &mut Native<P::Amount>,
    a: Native<P::Amount>,
    d: Native<P::Days>,
    retract: bool,
) -> bool {
    let op = if retract { P::sub } else { P::add };
    let next = P::weighted(a, d).and_then(|w| Some((op(*weighted, w)?, op(*amount, a)?)));
    match next {
        Some((w, s)) => {
            *weighted = w;
            *amount = s;
            true
        }
        None => false,
    }
}

/// Calls `f(row, amount, days)` for every row that passes the filter and has both values.
#[inline]
fn for_each_row<P: Path>(
    amounts: &PrimitiveArray<P::Amount>,
    days: &PrimitiveArray<P::Days>,
    filter: Option<&BooleanArray>,
    mut f: impl FnMut(usize, Native<P::Amount>, Native<P::Days>),
) {
    let (a, d) = (amounts.values(), days.values());
    if filter.is_none() && amounts.null_count() == 0 && days.null_count() == 0 {
        for i in 0..a.len() {
            f(i, a[i], d[i]);
        }
        return;
    }
    for i in 0..a.len() {
        let selected = filter.is_none_or(|f| f.is_valid(i) && f.value(i));
        if selected && amounts.is_valid(i) && days.is_valid(i) {
            f(i, a[i], d[i]);
        }
    }
}

/// One group's sums (used without GROUP BY, and in window frames).
struct WeightedDpdAccumulator<P: Path> {
    sum_type: DataType,
    weighted: Native<P::Amount>,
    amount: Native<P::Amount>,
}

impl<P: Path> std::fmt::Debug for WeightedDpdAccumulator<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WeightedDpdAccumulator({})", self.sum_type)
    }
}

impl<P: Path> WeightedDpdAccumulator<P> {
    fn new(sum_type: &DataType) -> Self {
        Self {
            sum_type: sum_type.clone(),
            weighted: Default::default(),
            amount: Default::default(),
        }
    }

    fn sum_scalar(&self, v: Native<P::Amount>) -> Result<ScalarValue> {
        let array = PrimitiveArray::<P::Amount>::from_iter_values([v])
            .with_data_type(self.sum_type.clone());
        ScalarValue::try_from_array(&array, 0)
    }
}

impl<P: Path> Accumulator for WeightedDpdAccumulator<P> {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let (amounts, days) = (
            values[0].as_primitive::<P::Amount>(),
            values[1].as_primitive::<P::Days>(),
        );
        let mut fits = true;
        for_each_row::<P>(amounts, days, None, |_, a, d| {
            fits &= accumulate::<P>(&mut self.weighted, &mut self.amount, a, d, false);
        });
        if fits { Ok(()) } else { Err(overflow()) }
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(P::ratio(self.weighted, self.amount)))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self)
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        Ok(vec![
            self.sum_scalar(self.weighted)?,
            self.sum_scalar(self.amount)?,
        ])
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let (w, a) = (
            states[0].as_primitive::<P::Amount>(),
            states[1].as_primitive::<P::Amount>(),
        );
        for i in 0..w.len() {
            if w.is_valid(i) && a.is_valid(i) {
                self.weighted = P::add(self.weighted, w.value(i)).ok_or_else(overflow)?;
                self.amount = P::add(self.amount, a.value(i)).ok_or_else(overflow)?;
            }
        }
        Ok(())
    }

    fn retract_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        // Sliding windows: subtract what leaves the frame (exact for decimals).
        let (amounts, days) = (
            values[0].as_primitive::<P::Amount>(),
            values[1].as_primitive::<P::Days>(),
        );
        let mut fits = true;
        for_each_row::<P>(amounts, days, None, |_, a, d| {
            fits &= accumulate::<P>(&mut self.weighted, &mut self.amount, a, d, true);
        });
        if fits { Ok(()) } else { Err(overflow()) }
    }

    fn supports_retract_batch(&self) -> bool {
        true
    }
}

/// Sums for many groups at once: two flat vectors indexed by group.
struct WeightedDpdGroups<P: Path> {
    sum_type: DataType,
    weighted: Vec<Native<P::Amount>>,
    amount: Vec<Native<P::Amount>>,
}

impl<P: Path> WeightedDpdGroups<P> {
    fn new(sum_type: &DataType) -> Self {
        Self {
            sum_type: sum_type.clone(),
            weighted: Vec::new(),
            amount: Vec::new(),
        }
    }

    fn resize(&mut self, groups: usize) {
        self.weighted.resize(groups, Default::default());
        self.amount.resize(groups, Default::default());
    }
}

impl<P: Path> GroupsAccumulator for WeightedDpdGroups<P> {
    fn update_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        opt_filter: Option<&BooleanArray>,
        total_num_groups: usize,
    ) -> Result<()> {
        self.resize(total_num_groups);
        let (amounts, days) = (
            values[0].as_primitive::<P::Amount>(),
            values[1].as_primitive::<P::Days>(),
        );
        let (weighted, amount) = (&mut self.weighted, &mut self.amount);
        let mut fits = true;
        for_each_row::<P>(amounts, days, opt_filter, |row, a, d| {
            let g = group_indices[row];
            fits &= accumulate::<P>(&mut weighted[g], &mut amount[g], a, d, false);
        });
        if fits { Ok(()) } else { Err(overflow()) }
    }

    fn evaluate(&mut self, emit_to: EmitTo) -> Result<ArrayRef> {
        let weighted = emit_to.take_needed(&mut self.weighted);
        let amount = emit_to.take_needed(&mut self.amount);
        let ratios: Float64Array = weighted
            .into_iter()
            .zip(amount)
            .map(|(w, a)| P::ratio(w, a))
            .collect();
        Ok(Arc::new(ratios))
    }

    fn state(&mut self, emit_to: EmitTo) -> Result<Vec<ArrayRef>> {
        let weighted = emit_to.take_needed(&mut self.weighted);
        let amount = emit_to.take_needed(&mut self.amount);
        let array = |v: Vec<Native<P::Amount>>| -> ArrayRef {
            Arc::new(
                PrimitiveArray::<P::Amount>::new(v.into(), None)
                    .with_data_type(self.sum_type.clone()),
            )
        };
        Ok(vec![array(weighted), array(amount)])
    }

    fn merge_batch(
        &mut self,
        values: &[ArrayRef],
        group_indices: &[usize],
        total_num_groups: usize,
    ) -> Result<()> {
        self.resize(total_num_groups);
        let (w, a) = (
            values[0].as_primitive::<P::Amount>(),
            values[1].as_primitive::<P::Amount>(),
        );
        for (row, &g) in group_indices.iter().enumerate() {
            if w.is_valid(row) && a.is_valid(row) {
                self.weighted[g] = P::add(self.weighted[g], w.value(row)).ok_or_else(overflow)?;
                self.amount[g] = P::add(self.amount[g], a.value(row)).ok_or_else(overflow)?;
            }
        }
        Ok(())
    }

    fn convert_to_state(
        &self,
        values: &[ArrayRef],
        opt_filter: Option<&BooleanArray>,
    ) -> Result<Vec<ArrayRef>> {
        // Each row becomes its own partial state; skipped rows contribute zero.
        let (amounts, days) = (
            values[0].as_primitive::<P::Amount>(),
            values[1].as_primitive::<P::Days>(),
        );
        let mut weighted = vec![Native::<P::Amount>::default(); amounts.len()];
        let mut amount = vec![Native::<P::Amount>::default(); amounts.len()];
        let mut fits = true;
        for_each_row::<P>(amounts, days, opt_filter, |row, a, d| {
            match P::weighted(a, d) {
                Some(w) => {
                    weighted[row] = w;
                    amount[row] = a;
                }
                None => fits = false,
            }
        });
        if !fits {
            return Err(overflow());
        }
        let array = |v: Vec<Native<P::Amount>>| -> ArrayRef {
            Arc::new(
                PrimitiveArray::<P::Amount>::new(v.into(), None)
                    .with_data_type(self.sum_type.clone()),
            )
        };
        Ok(vec![array(weighted), array(amount)])
    }

    fn size(&self) -> usize {
        (self.weighted.capacity() + self.amount.capacity())
            * std::mem::size_of::<Native<P::Amount>>()
    }
}
