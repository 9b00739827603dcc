//! `--dump DIR` of the experiments on the weights (`shatter`, `landscape`, `lesion`): everything
//! an independent reference (tests/pytorch/check_shatter.py, check_landscape.py, check_lesion.py)
//! needs to redo the
//! measurement, as `probe --dump` does for one pass. Per run `MODEL.safetensors`: the weights as
//! measured, *before* the batch-norm re-estimation (the reference redoes it); `inputs.safetensors`:
//! the images; the experiment's own JSON report. Developer output: resviz never reads it back.

use crate::experiments::landscape::{Landscape, directions};
use crate::experiments::shatter::Shatter;
use crate::records::{LesionStudy, PreciseBn};
use crate::train::Trainer;
use color_eyre::eyre::{Result, WrapErr, bail};
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashSet;
use std::path::Path;

/// One tensor of a dump: f32 values or i64 labels, with its shape.
enum Data {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

/// Write named tensors to `path` as safetensors.
fn write(path: &Path, tensors: Vec<(String, Vec<usize>, Data)>) -> Result<()> {
    let bytes: Vec<(String, Vec<usize>, Dtype, Vec<u8>)> = tensors
        .into_iter()
        .map(|(name, shape, data)| match data {
            Data::F32(v) => (name, shape, Dtype::F32, bytes_of(&v, f32::to_le_bytes)),
            Data::I64(v) => (name, shape, Dtype::I64, bytes_of(&v, i64::to_le_bytes)),
        })
        .collect();
    let views = bytes
        .iter()
        .map(|(n, s, d, b)| Ok((n.as_str(), TensorView::new(*d, s.clone(), b)?)))
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize_to_file(views, None, path)
        .wrap_err_with(|| format!("cannot write {}", path.display()))
}

fn bytes_of<T: Copy, const N: usize>(v: &[T], f: fn(T) -> [u8; N]) -> Vec<u8> {
    v.iter().flat_map(|&x| f(x)).collect()
}

/// The directory, and every run's weights as `MODEL.safetensors` (specs must be distinct: the
/// reference finds a run's weights by its name in the report).
fn weights(dir: &Path, trainer: &Trainer) -> Result<()> {
    std::fs::create_dir_all(dir).wrap_err_with(|| format!("cannot create {}", dir.display()))?;
    let mut seen = HashSet::new();
    for r in &trainer.runs {
        let spec = r.spec.to_string();
        if !seen.insert(spec.clone()) {
            bail!("--dump names weight files by model: {spec} is measured twice");
        }
        r.net
            .save_safetensors(&dir.join(format!("{spec}.safetensors")))?;
    }
    Ok(())
}

/// `bn` `[Σn, C, H, W]` (the batch-norm batches one after the other) and `bn_sizes` (each
/// batch's n, in order: the re-estimation is a cumulative average over them).
fn bn_tensors(bn: &[Vec<f32>], chw: [usize; 3]) -> Vec<(String, Vec<usize>, Data)> {
    let image: usize = chw.iter().product();
    let sizes: Vec<i64> = bn.iter().map(|b| (b.len() / image) as i64).collect();
    let n = sizes.iter().sum::<i64>() as usize;
    vec![
        (
            "bn".into(),
            vec![n, chw[0], chw[1], chw[2]],
            Data::F32(bn.concat()),
        ),
        ("bn_sizes".into(), vec![sizes.len()], Data::I64(sizes)),
    ]
}

fn json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    std::fs::write(path, serde_json::to_string(value)?)
        .wrap_err_with(|| format!("cannot write {}", path.display()))
}

fn chw(trainer: &Trainer) -> [usize; 3] {
    let ds = &trainer.ds;
    [ds.channels, ds.height, ds.width]
}

/// `shatter --dump DIR`: weights, `inputs.safetensors` (`x0`, `x1` `[pairs, C, H, W]`, `class`
/// `[pairs]`, the batch-norm batches) and `shatter.json` (the `--json` report).
/// (`report` is the subcommand's report, taken as any `Serialize` so that this module does not
/// depend on the subcommands that call it.)
pub fn shatter(
    dir: &Path,
    trainer: &Trainer,
    x: &Shatter,
    report: &impl serde::Serialize,
) -> Result<()> {
    weights(dir, trainer)?;
    let [c, h, w] = chw(trainer);
    let p = x.pairs.len();
    let half = |second: bool| -> Vec<f32> {
        x.pairs
            .iter()
            .flat_map(|(xy, _)| {
                let (a, b) = xy.split_at(xy.len() / 2);
                if second { b.to_vec() } else { a.to_vec() }
            })
            .collect()
    };
    let class = x.pairs.iter().map(|&(_, k)| k as i64).collect();
    let mut t = vec![
        ("x0".into(), vec![p, c, h, w], Data::F32(half(false))),
        ("x1".into(), vec![p, c, h, w], Data::F32(half(true))),
        ("class".into(), vec![p], Data::I64(class)),
    ];
    t.extend(bn_tensors(&x.bn, [c, h, w]));
    write(&dir.join("inputs.safetensors"), t)?;
    json(&dir.join("shatter.json"), report)
}

/// `landscape --dump DIR`: weights, `inputs.safetensors` (`x`, `y`: the loss's images in
/// order; the batch-norm batches), per run `MODEL.directions.safetensors` (`d1.NAME`,
/// `d2.NAME` per parameter, zero where not perturbed) and `landscape.json` (the report).
pub fn landscape(
    dir: &Path,
    trainer: &Trainer,
    x: &Landscape,
    report: &impl serde::Serialize,
) -> Result<()> {
    weights(dir, trainer)?;
    let [c, h, w] = chw(trainer);
    let xs: Vec<f32> = x.batches.iter().flat_map(|(x, _)| x.clone()).collect();
    let ys: Vec<i64> = x
        .batches
        .iter()
        .flat_map(|(_, y)| y.iter().map(|&v| v as i64))
        .collect();
    let n = ys.len();
    let mut t = vec![
        ("x".into(), vec![n, c, h, w], Data::F32(xs)),
        ("y".into(), vec![n], Data::I64(ys)),
    ];
    t.extend(bn_tensors(&x.bn, [c, h, w]));
    write(&dir.join("inputs.safetensors"), t)?;
    for r in &trainer.runs {
        // The directions depend on the weights' filter norms only, which the batch-norm
        // re-estimation leaves alone: the same as the measurement drew.
        let dirs = directions(&r.net, x.params.seed);
        let mut t = Vec::new();
        for (k, d) in dirs.into_iter().enumerate() {
            for (p, v) in r.net.store.params.iter().zip(d) {
                t.push((format!("d{}.{}", k + 1, p.name), p.shape(), Data::F32(v)));
            }
        }
        write(&dir.join(format!("{}.directions.safetensors", r.spec)), t)?;
    }
    json(&dir.join("landscape.json"), report)
}

/// `lesion --dump DIR`: weights, `inputs.safetensors` (`x`, `y`: the test images evaluated; the
/// batch-norm batches) and `lesion.json` (the `--json` study).
pub fn lesion(
    dir: &Path,
    trainer: &Trainer,
    study: &LesionStudy,
    images: usize,
    bn: &PreciseBn,
) -> Result<()> {
    weights(dir, trainer)?;
    let [c, h, w] = chw(trainer);
    let ds = &trainer.ds;
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    ds.gather_range(&ds.test, 0..images, &mut xs, &mut ys);
    let ys: Vec<i64> = ys.into_iter().map(|v| v as i64).collect();
    let mut t = vec![
        ("x".into(), vec![ys.len(), c, h, w], Data::F32(xs)),
        ("y".into(), vec![ys.len()], Data::I64(ys)),
    ];
    t.extend(bn_tensors(&bn.gather(ds), [c, h, w]));
    write(&dir.join("inputs.safetensors"), t)?;
    json(&dir.join("lesion.json"), study)
}
