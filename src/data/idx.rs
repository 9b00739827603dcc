//! MNIST-family loaders: the IDX format (`idx3-ubyte` images, `idx1-ubyte` labels, big-endian
//! headers), the embedded 10,000-digit subset, and `mnist:DIR` (MNIST or Fashion-MNIST).

use super::io::{Declared, find_file, gunzip, read_maybe_gz, require_dir};
use super::{DataError, Dataset, Split};
use std::path::{Path, PathBuf};

/// Magic number of an IDX file of unsigned bytes with three dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with one dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;
const CLASSES: usize = 10;

static BUNDLED_IMAGES: &[u8] = include_bytes!("../../assets/mnist-10k-images-idx3-ubyte.gz");
static BUNDLED_LABELS: &[u8] = include_bytes!("../../assets/mnist-10k-labels-idx1-ubyte.gz");
/// Of the bundled 10,000 digits, the first 8,000 train and the rest test.
pub const BUNDLED_TRAIN: usize = 8_000;

/// Decoded IDX images: `n` images of `rows × cols` bytes, contiguous.
#[derive(Debug)]
pub struct IdxImages {
    pub pixels: Vec<u8>,
    pub n: usize,
    pub rows: usize,
    pub cols: usize,
}

fn be_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap())
}

fn check_header(bytes: &[u8], path: &Path, header: usize, magic: u32) -> Result<(), DataError> {
    if bytes.len() >= 4 && be_u32(bytes, 0) != magic {
        return Err(DataError::BadMagic {
            path: path.to_path_buf(),
            expected: magic,
            found: be_u32(bytes, 0),
            what: if magic == IMAGES_MAGIC {
                "images"
            } else {
                "labels"
            },
        });
    }
    if bytes.len() < header {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            expected: header as u64,
            found: bytes.len() as u64,
        });
    }
    Ok(())
}

/// The size an IDX file's header declares (header + items × item bytes); its own length when
/// the header is short, has another magic or a size that overflows, which the parser refuses.
fn declared_size(head: &[u8], magic: u32) -> u64 {
    let dims = (magic & 0xff) as usize;
    let header = 4 + 4 * dims;
    if head.len() < header || be_u32(head, 0) != magic {
        return head.len() as u64;
    }
    (0..dims)
        .try_fold(1u64, |p, d| p.checked_mul(be_u32(head, 4 + 4 * d) as u64))
        .and_then(|p| p.checked_add(header as u64))
        .unwrap_or(head.len() as u64)
}

/// What an IDX images file may decompress to.
const IMAGES_DECLARED: Declared = Declared {
    head: 16,
    size: |h| declared_size(h, IMAGES_MAGIC),
};
/// What an IDX labels file may decompress to.
const LABELS_DECLARED: Declared = Declared {
    head: 8,
    size: |h| declared_size(h, LABELS_MAGIC),
};

/// Strip the 16-byte header of an (already decompressed) IDX images file, reusing its buffer.
pub fn parse_images(mut bytes: Vec<u8>, path: &Path) -> Result<IdxImages, DataError> {
    check_header(&bytes, path, 16, IMAGES_MAGIC)?;
    let (n, rows, cols) = (be_u32(&bytes, 4), be_u32(&bytes, 8), be_u32(&bytes, 12));
    // 2³² images of 2³²×2³² pixels do not fit a u64: a header claiming more than any file
    // holds is refused before its product can wrap around.
    let pixels = (n as u64)
        .checked_mul(rows as u64)
        .and_then(|p| p.checked_mul(cols as u64));
    let Some(need) = pixels.and_then(|p| p.checked_add(16)) else {
        return Err(DataError::Invalid {
            path: path.to_path_buf(),
            problem: format!("its header claims {n} images of {rows}×{cols} pixels"),
        });
    };
    if (bytes.len() as u64) < need {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            expected: need,
            found: bytes.len() as u64,
        });
    }
    if n == 0 || rows == 0 || cols == 0 {
        return Err(DataError::Invalid {
            path: path.to_path_buf(),
            problem: format!("holds no pixels ({n} images of {rows}×{cols})"),
        });
    }
    bytes.truncate(need as usize);
    bytes.drain(..16);
    Ok(IdxImages {
        pixels: bytes,
        n: n as usize,
        rows: rows as usize,
        cols: cols as usize,
    })
}

/// Strip the 8-byte header of an (already decompressed) IDX labels file and range-check labels.
pub fn parse_labels(mut bytes: Vec<u8>, path: &Path) -> Result<Vec<u8>, DataError> {
    check_header(&bytes, path, 8, LABELS_MAGIC)?;
    let need = 8 + be_u32(&bytes, 4) as u64;
    if (bytes.len() as u64) < need {
        return Err(DataError::Truncated {
            path: path.to_path_buf(),
            expected: need,
            found: bytes.len() as u64,
        });
    }
    bytes.truncate(need as usize);
    bytes.drain(..8);
    check_labels(&bytes, path)?;
    Ok(bytes)
}

/// Every label must be below 10.
pub(crate) fn check_labels(labels: &[u8], path: &Path) -> Result<(), DataError> {
    match labels.iter().position(|&l| l as usize >= CLASSES) {
        None => Ok(()),
        Some(index) => Err(DataError::LabelOutOfRange {
            path: path.to_path_buf(),
            index,
            label: labels[index],
            classes: CLASSES,
        }),
    }
}

fn pair(
    images: Vec<u8>,
    images_path: &Path,
    labels: Vec<u8>,
    labels_path: &Path,
) -> Result<(IdxImages, Vec<u8>), DataError> {
    let (images, labels) = rayon::join(
        || parse_images(images, images_path),
        || parse_labels(labels, labels_path),
    );
    let (images, labels) = (images?, labels?);
    if images.n != labels.len() {
        return Err(DataError::CountMismatch {
            images_path: images_path.to_path_buf(),
            images: images.n,
            labels_path: labels_path.to_path_buf(),
            labels: labels.len(),
        });
    }
    Ok((images, labels))
}

/// Load one split (`train` or `t10k`) from `dir`, decompressing images and labels in parallel.
fn load_split(dir: &Path, prefix: &str) -> Result<(IdxImages, Vec<u8>, PathBuf), DataError> {
    let images_path = find_file(dir, &format!("{prefix}-images-idx3-ubyte"))?;
    let labels_path = find_file(dir, &format!("{prefix}-labels-idx1-ubyte"))?;
    let (images, labels) = rayon::join(
        || read_maybe_gz(&images_path, &IMAGES_DECLARED),
        || read_maybe_gz(&labels_path, &LABELS_DECLARED),
    );
    let (images, labels) = pair(images?, &images_path, labels?, &labels_path)?;
    Ok((images, labels, images_path))
}

/// `mnist:DIR`: `{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]` in `dir`.
pub fn load_dir(dir: &Path, source: &str) -> Result<Dataset, DataError> {
    require_dir(dir)?;
    let (train, test) = rayon::join(|| load_split(dir, "train"), || load_split(dir, "t10k"));
    let ((tr, tr_labels, _), (te, te_labels, te_path)) = (train?, test?);
    if (te.rows, te.cols) != (tr.rows, tr.cols) {
        return Err(DataError::Invalid {
            path: te_path,
            problem: format!(
                "images are {}×{} but the training images are {}×{}",
                te.rows, te.cols, tr.rows, tr.cols
            ),
        });
    }
    let (h, w) = (tr.rows, tr.cols);
    let train = Split::new(tr.pixels, tr_labels, h * w);
    let test = Split::new(te.pixels, te_labels, h * w);
    Ok(Dataset::from_splits(
        "mnist",
        source,
        [1, h, w],
        CLASSES,
        train,
        test,
        false,
    ))
}

/// `mnist`: the embedded subset, first 8,000 digits train, last 2,000 test.
pub fn load_bundled() -> Result<Dataset, DataError> {
    let images_path = Path::new("<bundled>/mnist-10k-images-idx3-ubyte.gz");
    let labels_path = Path::new("<bundled>/mnist-10k-labels-idx1-ubyte.gz");
    let (images, labels) = rayon::join(
        || gunzip(BUNDLED_IMAGES, images_path, &IMAGES_DECLARED),
        || gunzip(BUNDLED_LABELS, labels_path, &LABELS_DECLARED),
    );
    let (mut images, mut labels) = pair(images?, images_path, labels?, labels_path)?;
    let cut = BUNDLED_TRAIN.min(images.n);
    let image_len = images.rows * images.cols;
    let test = Split::new(
        images.pixels.split_off(cut * image_len),
        labels.split_off(cut),
        image_len,
    );
    let train = Split::new(images.pixels, labels, image_len);
    Ok(Dataset::from_splits(
        "mnist",
        "mnist",
        [1, images.rows, images.cols],
        CLASSES,
        train,
        test,
        false,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images(n: u32, rows: u32, cols: u32, body: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for w in [IMAGES_MAGIC, n, rows, cols] {
            v.extend(w.to_be_bytes());
        }
        v.extend(body);
        v
    }

    #[test]
    fn parses_images_and_labels() {
        let body: Vec<u8> = (0..12).collect();
        let im = parse_images(images(2, 2, 3, &body), Path::new("i")).unwrap();
        assert_eq!((im.n, im.rows, im.cols, im.pixels), (2, 2, 3, body));
        let mut l = LABELS_MAGIC.to_be_bytes().to_vec();
        l.extend(3u32.to_be_bytes());
        l.extend([9, 0, 4]);
        assert_eq!(parse_labels(l, Path::new("l")).unwrap(), vec![9, 0, 4]);
    }

    #[test]
    fn rejects_bad_input_naming_the_file() {
        let p = Path::new("dir/f-idx3-ubyte");
        let err = |r: Result<IdxImages, DataError>| r.unwrap_err().to_string();
        let mut swapped = images(1, 1, 1, &[0]);
        swapped[3] = 0x01;
        assert!(err(parse_images(swapped, p)).contains("wrong IDX magic 0x00000801"));
        assert!(err(parse_images(vec![0, 0, 8], p)).contains("truncated"));
        assert!(err(parse_images(images(1, 2, 3, &[0; 5]), p)).contains("needs 22 bytes"));
        assert!(err(parse_images(images(0, 28, 28, &[]), p)).contains("no pixels"));
        let mut l = LABELS_MAGIC.to_be_bytes().to_vec();
        l.extend(2u32.to_be_bytes());
        l.extend([1, 10]);
        let msg = parse_labels(l.clone(), p).unwrap_err().to_string();
        assert_eq!(
            msg,
            "dir/f-idx3-ubyte: label 10 at item 1 is out of range 0..10"
        );
        l.pop();
        let msg = parse_labels(l, p).unwrap_err().to_string();
        assert!(msg.starts_with("dir/f-idx3-ubyte: truncated"), "{msg}");
    }

    #[test]
    fn bundled_subset_splits_8000_2000() {
        let ds = load_bundled().unwrap();
        assert_eq!((ds.train.len(), ds.test.len()), (8_000, 2_000));
        assert_eq!(
            (ds.channels, ds.height, ds.width, ds.augment),
            (1, 28, 28, false)
        );
    }
}
