//! `resviz lesion`: train N steps (as `resviz train` does) or load a saved run, then test every
//! run with each block deleted (Veit et al. 2016, §4), as a table or JSON on stdout.

use super::LesionArgs;
use super::common::measure_all;
use super::runs::RunsOrigin;
use super::{plot, runs};
use crate::experiments::lesion::Lesion;
use crate::records::{LesionParams, LesionStudy, PreciseBn, RunHistory, default_bn};
use crate::train::Trainer;
use color_eyre::eyre::{Result, bail};

pub fn run(args: &LesionArgs) -> Result<()> {
    if args.test_images == Some(0) {
        bail!("--test-images must be at least 1");
    }
    let (trainer, histories) = args.m.runs((1, None), |_| Ok(()))?;
    let images = args
        .test_images
        .unwrap_or(usize::MAX)
        .min(trainer.ds.test.len());
    let origin = args.m.origin(&trainer);
    let study = study(&trainer, &histories, images, args.m.bn_batches, origin)?;
    if let Some(dir) = &args.dump {
        super::dump::lesion(dir, &trainer, &study, images, &study.bn)?;
    }
    let classes = trainer.ds.classes;
    let svg = || plot::lesion_svg(&study.report, classes);
    runs::emit(&study, args.m.json, args.m.plot.as_deref(), svg, |s| {
        table(s, classes)
    })
}

/// Every run of `trainer` lesioned on the first `images` test images, after re-estimating batch
/// norm on `bn_batches` training batches, one bar on stderr over the evaluations. `histories`
/// give the training accuracies the evaluation is checked against.
pub fn study(
    trainer: &Trainer,
    histories: &[RunHistory],
    images: usize,
    bn_batches: usize,
    origin: RunsOrigin,
) -> Result<LesionStudy> {
    let params = LesionParams {
        experiment: origin.experiment,
        steps: origin.steps,
        from: origin.from,
        test_images: images,
        eval_batch: trainer.cfg.batch.max(1),
    };
    let bn = PreciseBn {
        batches: bn_batches,
        ..default_bn(trainer.cfg.batch)
    };
    let (train_len, image_len) = (trainer.ds.train.len(), trainer.ds.image_len());
    super::bounds::bn_batches(bn.batches, bn.batch, train_len, image_len)?;
    let x = Lesion::new(&trainer.ds, images, params.eval_batch, &bn)?;
    let models = measure_all(trainer, "lesion", &x)?;
    let train_acc: Vec<Option<f64>> = histories.iter().map(|h| h.final_mean(|s| s.acc)).collect();
    Ok(LesionStudy::new(models, params, bn, &train_acc))
}

/// How the batch-norm statistics were set, in words.
pub fn bn_note(bn: &PreciseBn) -> String {
    match bn.batches {
        0 => "batch norm: the runs' own running statistics (not re-estimated)".into(),
        b => format!(
            "batch norm: running statistics re-estimated on {b} × {} training images first",
            bn.batch
        ),
    }
}

/// Per model: the intact accuracy, then per block its accuracy and drop, with the chance level.
fn table(study: &LesionStudy, classes: usize) -> String {
    let r = &study.report;
    let chance = 100.0 / classes.max(1) as f64;
    let mut out = format!(
        "lesion study on {} test images (chance level {chance:.1} %)\n{}\n\
         drop = intact - lesioned accuracy: positive means the deletion hurt\n",
        r.params.test_images,
        bn_note(&study.bn)
    );
    for (m, check) in r.models.iter().zip(&study.checks) {
        out += &format!(
            "\n{}: intact {:.2} %\n{:<14}{:>10}{:>10}\n",
            m.model,
            100.0 * m.accuracy,
            "deleted",
            "accuracy",
            "drop"
        );
        if check.eval_below_train {
            out += &format!(
                "WARNING: evaluation accuracy {:.1} % is more than {:.0} points below training \
                 accuracy {:.1} %: the drops below are suspect\n",
                100.0 * check.eval_accuracy,
                100.0 * crate::records::EVAL_GAP,
                100.0 * check.train_accuracy.unwrap_or(f64::NAN)
            );
        }
        for b in &m.blocks {
            out += &match b.accuracy {
                Some(a) => format!(
                    "{:<14}{:>8.2} %{:>+9.2}\n",
                    b.name,
                    100.0 * a,
                    100.0 * (m.accuracy - a)
                ),
                None => format!("{:<14}{:>10}{:>10}\n", b.name, "-", "(shape)"),
            };
        }
        if m.at_chance(classes) {
            out += "intact accuracy is at chance: nothing to lose yet, so these drops say \
                    nothing about the blocks (train longer)\n";
        } else if let (Some(med), Some((name, max))) = (m.median_drop(), m.max_drop()) {
            out += &format!(
                "median drop {:.2} points, max {:.2} ({name})\n",
                100.0 * med,
                100.0 * max
            );
        }
    }
    out
}
