fn main() {
    println!("content-sync");
}
