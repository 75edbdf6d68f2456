//! A paper-form CSV as an organizer imports it: every line read and checked,
//! or the file refused as a whole, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use undersigned_ingest::read_paper_forms;

fuzz_target!(|data: &[u8]| {
    let Some((&choice, file)) = data.split_first() else {
        return;
    };
    let petition = undersigned_fuzz::petition(undersigned_fuzz::rules(choice));
    if let Ok(lines) = read_paper_forms(file, &petition, undersigned_fuzz::now()) {
        // No more lines than the file has line ends (and the header is not one).
        let ends = file.iter().filter(|&&b| b == b'\n' || b == b'\r').count();
        assert!(lines.len() <= ends + 1);
    }
});
