//! Property tests of the model's scalar functions through SQL: `scorecard_points` with
//! any PD (NaN and infinities included) and any scaling, `risk_score` / `risk_points` of
//! the committed default model with any feature values (NULL, extremes, unknown text).
//! No panic; a result is a probability in [0, 1] and whole points, or an error — never
//! a NaN or a saturated number. The seed is fixed, so a run is reproducible.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Int32Type, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use proptest::prelude::*;

use crate::encoding::Encoding;
use crate::model::RiskModel;
use crate::snapshots::Snapshots;
use crate::sql::SessionModel;

fn default_model() -> SessionModel {
    let text = include_str!("../../data/models/default.json");
    SessionModel {
        model: Arc::new(RiskModel::from_json(text, "default.json").expect("the default model")),
        name: "default.json".into(),
    }
}

/// Runs `sql` over the table `t` holding `batch`, with the model's functions.
fn query(batch: RecordBatch, sql: &str) -> Result<RecordBatch, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let mut ctx = SessionContext::new();
        let model = default_model();
        crate::sql::register_session(&mut ctx, Some(&model), &Snapshots::default())
            .map_err(|e| e.to_string())?;
        let table =
            MemTable::try_new(batch.schema(), vec![vec![batch]]).map_err(|e| e.to_string())?;
        ctx.register_table("t", Arc::new(table))
            .map_err(|e| e.to_string())?;
        let frame = ctx.sql(sql).await.map_err(|e| e.to_string())?;
        let schema = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await.map_err(|e| e.to_string())?;
        datafusion::arrow::compute::concat_batches(&schema, &batches).map_err(|e| e.to_string())
    })
}

/// Any float, the awkward ones more often.
fn any_number() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        1 => Just(None),
        1 => Just(Some(f64::NAN)),
        1 => Just(Some(f64::INFINITY)),
        1 => Just(Some(f64::NEG_INFINITY)),
        1 => Just(Some(0.0)),
        1 => Just(Some(1.0)),
        4 => (0.0f64..1.0).prop_map(Some),
        3 => any::<f64>().prop_map(Some),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 128,
        rng_seed: proptest::test_runner::RngSeed::Fixed(20_261_123),
        ..ProptestConfig::default()
    })]

    #[test]
    fn scorecard_points_are_whole_and_fall_as_the_pd_rises_or_an_error(
        pds in proptest::collection::vec(any_number(), 1..20),
        scaling in prop_oneof![
            Just(None),
            (-1e6f64..1e6, 0.001f64..1e6, -100.0f64..1e4).prop_map(Some),
            (any::<f64>(), any::<f64>(), any::<f64>()).prop_map(Some),
        ],
    ) {
        let pd: Float64Array = pds.iter().copied().collect();
        let schema = Arc::new(Schema::new(vec![Field::new("pd", DataType::Float64, true)]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(pd.clone()) as ArrayRef]).unwrap();
        let call = match scaling {
            None => "scorecard_points(pd)".to_string(),
            Some((p, o, d)) if p.is_finite() && o.is_finite() && d.is_finite() => {
                format!("scorecard_points(pd, {p:?}, {o:?}, {d:?})")
            }
            Some(_) => "scorecard_points(pd)".to_string(),
        };
        match query(batch, &format!("SELECT {call} FROM t")) {
            Err(e) => prop_assert!(e.contains("scorecard_points"), "{}", e),
            Ok(out) => {
                let points = out.column(0).as_primitive::<Int32Type>();
                for (i, a) in pds.iter().enumerate() {
                    prop_assert_eq!(points.is_null(i), a.is_none());
                    prop_assert!(!matches!(a, Some(v) if v.is_nan()), "NaN gave points");
                    for (j, b) in pds.iter().enumerate() {
                        if let (Some(a), Some(b)) = (a, b)
                            && a < b
                            && scaling.is_none()
                        {
                            prop_assert!(points.value(i) >= points.value(j));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_model_gives_a_probability_or_an_error_for_any_feature_values(
        seed in proptest::collection::vec((any_number(), any::<u8>()), 23..24),
        rows in 1usize..4,
    ) {
        let model = default_model();
        let features = &model.model.features;
        let mut fields = Vec::new();
        let mut columns: Vec<ArrayRef> = Vec::new();
        for (k, f) in features.iter().enumerate() {
            let (number, pick) = seed[k % seed.len()];
            match &f.encoding {
                Encoding::Numeric { .. } => {
                    fields.push(Field::new(&f.name, DataType::Float64, true));
                    columns.push(Arc::new(Float64Array::from(vec![number; rows])));
                }
                Encoding::Categorical { levels } => {
                    let text = match pick % 3 {
                        0 => None,
                        1 => levels.get(pick as usize % levels.len().max(1)).cloned(),
                        _ => Some("never seen".to_string()),
                    };
                    fields.push(Field::new(&f.name, DataType::Utf8, true));
                    columns.push(Arc::new(StringArray::from(vec![text; rows])));
                }
            }
        }
        let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).unwrap();
        let args: Vec<String> = features.iter().map(|f| format!("\"{}\"", f.name)).collect();
        let args = args.join(", ");
        let sql = format!("SELECT risk_score({args}), risk_points({args}) FROM t");
        match query(batch, &sql) {
            Err(e) => prop_assert!(
                e.contains("not a finite number") || e.contains("too extreme"),
                "{}",
                e
            ),
            Ok(out) => {
                let pd = out.column(0).as_primitive::<Float64Type>();
                for r in 0..out.num_rows() {
                    prop_assert!((0.0..=1.0).contains(&pd.value(r)), "PD {}", pd.value(r));
                }
            }
        }
    }
}
