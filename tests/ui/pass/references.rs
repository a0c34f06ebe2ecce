//! `depends_on` and `blocks` in every form: string, list of strings, path,
//! `crate::` path, list of paths, mixed.

use orchestrator::worker;

mod ingest {
    use orchestrator::worker;

    #[worker(interval = "1m")]
    pub async fn fetch_data() {}

    #[worker(interval = "1m", name = "fetch-prices")]
    pub(crate) async fn fetch_prices() {}

    pub mod deep {
        #[orchestrator::worker(interval = "1m", depends_on = super::fetch_data, blocks = [crate::cleanup])]
        pub async fn normalize() {}
    }
}

use ingest::fetch_data;

#[worker(interval = "2m", depends_on = "fetch_data")]
async fn by_string() {}

#[worker(interval = "2m", depends_on = ["fetch_data", "fetch-prices"], blocks = ["cleanup"])]
async fn by_strings() {}

#[worker(interval = "2m", depends_on = fetch_data)]
async fn by_imported_path() {}

#[worker(interval = "2m", depends_on = crate::ingest::fetch_prices)]
async fn by_crate_path() {}

#[worker(interval = "2m", depends_on = [ingest::fetch_data, crate::ingest::deep::normalize], blocks = cleanup)]
async fn by_paths() {}

#[worker(interval = "2m", depends_on = ["fetch-prices", ingest::deep::normalize,], blocks = [cleanup, "by_string"])]
async fn mixed() {}

#[worker(interval = "1h")]
async fn cleanup() {}

// A reference to a worker defined later in the file, and from a fn body.
fn later() {
    #[worker(depends_on = [super_late])]
    async fn local() {}
}

#[worker(delay = "1s")]
async fn super_late() {}

fn main() {
    later();
}
