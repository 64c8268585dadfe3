pub async fn run(_n: usize) -> Result<(), Box<dyn std::error::Error>> { Ok(()) }
