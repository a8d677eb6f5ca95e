//! Board support shared by the zmtp firmware examples (`examples/firmware-*`).
//!
//! The board is a ST NUCLEO-F429ZI (STM32F429ZI, Cortex-M4F at 180 MHz, 2 MiB flash,
//! 192 KiB RAM) with its on-board LAN8742A Ethernet PHY on RMII. [`init`] brings up the clocks,
//! the hardware RNG and an [embassy-net](embassy_net) stack on the Ethernet MAC with a static
//! IPv4 address, spawns the network task and returns the stack and the RNG.
//!
//! Everything here is the same in the firmware with zmtp and in its baseline (the same
//! firmware with an empty protocol loop), so the difference in size between the two is what
//! zmtp costs.
//!
//! Edit [`ADDRESS`], [`GATEWAY`] and [`BROKER`] for your network.
#![no_std]

use embassy_executor::Spawner;
use embassy_net::{Ipv4Address, Ipv4Cidr, Stack, StackResources, StaticConfigV4};
use embassy_stm32::bind_interrupts;
use embassy_stm32::eth::{self, Ethernet, GenericPhy, PacketQueue, Sma};
use embassy_stm32::peripherals::{ETH, ETH_SMA, RNG};
use embassy_stm32::rng::{self, Rng};
use static_cell::StaticCell;
use {defmt_rtt as _, panic_probe as _};

pub use embassy_net;

#[cfg(feature = "zmtp")]
pub mod link;

/// Our address (a static address keeps DHCP out of the firmware).
pub const ADDRESS: Ipv4Cidr = Ipv4Cidr::new(Ipv4Address::new(192, 168, 7, 2), 24);
/// The gateway.
pub const GATEWAY: Ipv4Address = Ipv4Address::new(192, 168, 7, 1);
/// Where the ZeroMQ peer (a ROUTER broker, a PUB) listens.
pub const BROKER: (Ipv4Address, u16) = (Ipv4Address::new(192, 168, 7, 1), 5555);
/// A locally administered MAC address.
pub const MAC: [u8; 6] = [0x02, 0x00, 0x5a, 0x4d, 0x54, 0x50];

/// embassy-net sockets: one TCP connection at a time is all the examples use.
const SOCKETS: usize = 2;
/// Ethernet DMA descriptors and packet buffers (about 1.5 KiB each).
const ETH_TX: usize = 4;
const ETH_RX: usize = 4;

bind_interrupts!(struct Irqs {
    ETH => eth::InterruptHandler;
    HASH_RNG => rng::InterruptHandler<RNG>;
});

/// The Ethernet driver.
pub type Device = Ethernet<'static, ETH, GenericPhy<Sma<'static, ETH_SMA>>>;

/// The hardware random number generator.
pub type HwRng = Rng<'static, RNG>;

/// What the firmware gets: the network stack and the hardware RNG.
pub struct Board {
    /// The IP stack (its task is already running).
    pub stack: Stack<'static>,
    /// The hardware random number generator (a TRNG: analog noise, checked by the
    /// peripheral's seed and clock error flags).
    pub rng: HwRng,
}

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, Device>) -> ! {
    runner.run().await
}

fn clocks() -> embassy_stm32::Config {
    use embassy_stm32::rcc::*;
    use embassy_stm32::time::Hertz;
    let mut config = embassy_stm32::Config::default();
    // The ST-LINK's 8 MHz MCO drives HSE; PLL to 180 MHz (48 MHz is not needed: no USB).
    config.rcc.hse = Some(Hse {
        freq: Hertz(8_000_000),
        mode: HseMode::Bypass,
    });
    config.rcc.pll_src = PllSource::HSE;
    config.rcc.pll = Some(Pll {
        prediv: PllPreDiv::DIV4,
        mul: PllMul::MUL180,
        divp: Some(PllPDiv::DIV2),
        divq: Some(PllQDiv::DIV8),
        divr: None,
    });
    config.rcc.ahb_pre = AHBPrescaler::DIV1;
    config.rcc.apb1_pre = APBPrescaler::DIV4;
    config.rcc.apb2_pre = APBPrescaler::DIV2;
    config.rcc.sys = Sysclk::PLL1_P;
    config
}

/// Brings the board up and starts the network task.
pub async fn init(spawner: Spawner) -> Board {
    let p = embassy_stm32::init(clocks());
    let mut rng = Rng::new(p.RNG, Irqs);
    let mut seed = [0; 8];
    rng.fill_bytes(&mut seed);

    static PACKETS: StaticCell<PacketQueue<ETH_TX, ETH_RX>> = StaticCell::new();
    // NUCLEO-F429ZI RMII pins (UM1974): REF_CLK PA1, CRS_DV PA7, RXD0 PC4, RXD1 PC5,
    // TXD0 PG13, TXD1 PB13, TX_EN PG11, MDIO PA2, MDC PC1.
    let device = Ethernet::new(
        PACKETS.init(PacketQueue::new()),
        p.ETH,
        Irqs,
        p.PA1,
        p.PA7,
        p.PC4,
        p.PC5,
        p.PG13,
        p.PB13,
        p.PG11,
        MAC,
        p.ETH_SMA,
        p.PA2,
        p.PC1,
    );
    let config = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: ADDRESS,
        gateway: Some(GATEWAY),
        dns_servers: Default::default(),
    });
    static RESOURCES: StaticCell<StackResources<SOCKETS>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        device,
        config,
        RESOURCES.init(StackResources::new()),
        u64::from_le_bytes(seed),
    );
    spawner.spawn(net_task(runner).expect("net task spawned once"));
    stack.wait_config_up().await;
    defmt::info!("network up: {}", ADDRESS);
    Board { stack, rng }
}
