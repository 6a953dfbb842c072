//! `arq train`: the risk model on the warehouse's features, or on any labelled table.

use arq_models::model::Champion;
use arq_models::{LabelledData, RiskModel, Scorecard, TrainOptions, features};

use crate::cli::args::{ChampionArg, TrainArgs};
use crate::cli::config::Config;
use crate::error::{ArqError, Result};
use crate::labelled::{TableSpec, labelled_table};
use crate::output::{print_text, write_atomically};
use crate::progress::stage_bar;

/// Trains, writes the artifact (and the report as JSON when asked), prints the report.
pub fn run(config: &Config, args: &TrainArgs) -> Result<()> {
    let options = TrainOptions {
        scorecard: Scorecard {
            points: args.scorecard.points,
            odds: args.scorecard.odds,
            pdo: args.scorecard.pdo,
        },
        alpha: args.alpha,
        refit: !args.no_refit,
        champion: args.champion.map(|c| match c {
            ChampionArg::Logistic => Champion::Logistic,
            ChampionArg::Scorecard => Champion::BinnedScorecard,
            ChampionArg::Forest => Champion::Forest,
        }),
        trees: args.trees,
        seed: args.seed,
        ..TrainOptions::default()
    };
    options.validate()?;
    let bar = stage_bar("training", arq_models::train::STAGES.len() + 1, args.quiet);
    bar.set_message("computing features");
    let data = config.block_on(training_data(config, args))?;
    bar.inc(1);
    let model = arq_models::train(&data, &options, &mut |stage| {
        bar.set_position(stage as u64 + 1);
        bar.set_message(arq_models::train::STAGES[stage]);
    })?;
    bar.finish_and_clear();
    let json = model.to_json()?;
    write_atomically(&args.out, |file| {
        std::io::Write::write_all(file, json.as_bytes()).map_err(|e| ArqError::io(&args.out, e))
    })?;
    if let Some(path) = &args.report {
        let json = serde_json::to_string_pretty(&model.report)
            .map_err(|e| ArqError::Internal(format!("cannot encode the report: {e}")))?;
        write_atomically(path, |file| {
            std::io::Write::write_all(file, format!("{json}\n").as_bytes())
                .map_err(|e| ArqError::io(path, e))
        })?;
    }
    print_text(&report_text(&args.out.display().to_string(), &model))
}

/// The labelled rows: `--table`'s, else the warehouse's features and labels.
async fn training_data(config: &Config, args: &TrainArgs) -> Result<LabelledData> {
    match (&args.table, &args.label) {
        (Some(path), Some(label)) => {
            labelled_table(&TableSpec {
                path: path.clone(),
                label: label.clone(),
                ids: args.ids.clone(),
                exclude: args.exclude.clone(),
                time: args.time.clone(),
            })
            .await
        }
        _ => {
            let warehouse = config.warehouse()?;
            let state = warehouse.session(None).await?.state();
            let source = warehouse.root().to_string();
            Ok(features::training_data(&state, &source, warehouse.as_of_day()).await?)
        }
    }
}

/// What was trained on, the split and the validation report.
fn report_text(out: &str, model: &RiskModel) -> String {
    let w = &model.training;
    let window = match (
        &w.train_from,
        &w.train_to,
        &w.validation_from,
        &w.validation_to,
    ) {
        (Some(a), Some(b), Some(c), Some(d)) => {
            format!("trained on snapshots {a} to {b}, validated on {c} to {d}")
        }
        _ => "validated on a fixed pseudo-random third of the rows".to_string(),
    };
    let shipped = match &w.refit {
        Some(r) => format!(
            "; the shipped model was then fitted again on all {} labelled rows ({} bad) with the \
             same settings",
            r.rows, r.bads
        ),
        None => "; the shipped model is the one fitted on the training rows".to_string(),
    };
    let mut text = format!(
        "model {out} ({} features, {} design columns) from {}: {window}; {} training rows ({} \
         bad), {} validation rows ({} bad){shipped}; fingerprint {}\n\n{}",
        model.features.len(),
        model.design_columns.len(),
        w.source,
        w.train_rows,
        w.train_bads,
        w.validation_rows,
        w.validation_bads,
        w.fingerprint,
        model.report.to_table()
    );
    if let Some(binned) = &model.binned {
        text.push_str(&format!(
            "\npoints of the binned scorecard{} (a row's score is the sum of its bins' points)\n{}",
            if model.champion == Champion::BinnedScorecard {
                ", the champion"
            } else {
                ", a candidate"
            },
            binned.points_table()
        ));
    }
    text
}
